// Images: 8/16-bit PNG, gray, RGBA, JPEG, EXIF orientation, EXR, limits and corrupt inputs.
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "pixel3dmm/core/atomic_file.h"
#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/image.h"
#include "pixel3dmm/io/map_png.h"
#include "test_util.h"

using namespace pixel3dmm;
using namespace pixel3dmm::io;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

torch::Tensor random_image(int64_t c, int64_t h, int64_t w, uint64_t seed, double levels) {
  auto g = torch::Generator(at::detail::createCPUGenerator(seed));
  return torch::randint(0, static_cast<int64_t>(levels) + 1, {1, c, h, w}, g, torch::kFloat) / levels;
}

}  // namespace

TEST_CASE("8-bit and 16-bit PNG round trips are exact", "[io][image]") {
  TempDir dir;
  const auto img8 = random_image(3, 5, 7, 1, 255.0);
  write_image(dir.file("a.png"), img8);
  const auto r8 = read_image(dir.file("a.png"));
  REQUIRE(r8.scalar_type() == torch::kFloat);
  require_close(r8, img8, 1e-7);

  const auto img16 = random_image(3, 4, 6, 2, 65535.0);
  write_image(dir.file("b.png"), img16, 16);
  require_close(read_image(dir.file("b.png")), img16, 1e-7);
  REQUIRE(cv::imread(dir.file("b.png"), cv::IMREAD_UNCHANGED).depth() == CV_16U);
  // Channel order on disk is OpenCV's BGR: the red channel is the last one in the file.
  const cv::Mat bgr = cv::imread(dir.file("a.png"), cv::IMREAD_UNCHANGED);
  REQUIRE(bgr.at<cv::Vec3b>(0, 0)[2] == static_cast<uint8_t>(std::lround(img8[0][0][0][0].item<float>() * 255)));

  // Values outside [0, 1] are clamped; CHW and HW layouts are accepted.
  write_image(dir.file("c.png"), torch::full({3, 2, 2}, 1.7f));
  require_close(read_image(dir.file("c.png")), torch::ones({1, 3, 2, 2}), 0.0);
}

TEST_CASE("gray images become three equal channels and alpha is dropped", "[io][image]") {
  TempDir dir;
  const auto gray = random_image(1, 6, 5, 3, 255.0);
  write_image(dir.file("g.png"), gray[0][0]);  // H x W
  REQUIRE(cv::imread(dir.file("g.png"), cv::IMREAD_UNCHANGED).channels() == 1);
  require_close(read_image(dir.file("g.png")), gray.expand({1, 3, 6, 5}), 1e-7);

  const auto rgba = random_image(4, 3, 4, 4, 255.0);
  write_image(dir.file("rgba.png"), rgba);
  REQUIRE(cv::imread(dir.file("rgba.png"), cv::IMREAD_UNCHANGED).channels() == 4);
  require_close(read_image(dir.file("rgba.png")), rgba.slice(1, 0, 3), 1e-7);
}

TEST_CASE("JPEG round trip within compression tolerance, EXIF orientation applied", "[io][image]") {
  TempDir dir;
  // A smooth image survives JPEG with small error.
  const auto y = torch::linspace(0, 1, 32).view({1, 1, 32, 1});
  const auto x = torch::linspace(0, 1, 48).view({1, 1, 1, 48});
  const auto img = torch::cat({y.expand({1, 1, 32, 48}), x.expand({1, 1, 32, 48}), (0.5f * (x + y)).expand({1, 1, 32, 48})}, 1);
  write_image(dir.file("s.jpg"), img);
  const auto r = read_image(dir.file("s.jpg"));
  REQUIRE(r.sizes() == img.sizes());
  REQUIRE(pixel3dmm::test::max_abs_diff(r, img) < 0.06);
  REQUIRE(pixel3dmm::test::max_abs_diff(r, img) > 0.0);  // it did go through a lossy codec

  // 32 wide x 16 tall: left half red, right half blue; EXIF orientation 6 = rotate 90 degrees clockwise to view.
  auto halves = torch::zeros({1, 3, 16, 32});
  halves.index_put_({0, 0, torch::indexing::Slice(), torch::indexing::Slice(0, 16)}, 1.0f);
  halves.index_put_({0, 2, torch::indexing::Slice(), torch::indexing::Slice(16, 32)}, 1.0f);
  write_image(dir.file("plain.jpg"), halves);
  std::string jpg = read_file(dir.file("plain.jpg"));
  const unsigned char app1[] = {0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,               // APP1, 34 bytes
                                'I',  'I',  0x2A, 0x00, 0x08, 0x00, 0x00, 0x00,                 // TIFF, IFD at 8
                                0x01, 0x00,                                                      // one entry
                                0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,  // 0x0112=6
                                0x00, 0x00, 0x00, 0x00};
  jpg.insert(2, reinterpret_cast<const char*>(app1), sizeof(app1));
  write_file_atomically(dir.file("rotated.jpg"), jpg);
  const auto rot = read_image(dir.file("rotated.jpg"));
  REQUIRE(rot.sizes() == torch::IntArrayRef({1, 3, 32, 16}));  // width and height swapped
  REQUIRE(rot[0][0][4][8].item<float>() > 0.8f);                // top: the former left half (red)
  REQUIRE(rot[0][2][4][8].item<float>() < 0.2f);
  REQUIRE(rot[0][2][27][8].item<float>() > 0.8f);  // bottom: blue
}

TEST_CASE("EXR keeps float values beyond [0, 1]", "[io][image]") {
  TempDir dir;
  auto hdr = torch::rand({1, 3, 4, 5}, torch::Generator(at::detail::createCPUGenerator(5))) * 10.0f - 2.0f;
  write_image(dir.file("h.exr"), hdr);
  const auto r = read_image(dir.file("h.exr"));
  require_close(r, hdr, 1e-6);
  REQUIRE(r.max().item<float>() > 1.0f);
}

TEST_CASE("image limits and corrupt inputs fail clearly", "[io][image][corrupt]") {
  TempDir dir;
  require_throws_with<FileNotFound>([&] { read_image(dir.file("missing.png")); }, {"missing.png", "no such file"});
  std::ofstream(dir.file("text.png")) << "this is not an image at all";
  require_throws_with<FormatError>([&] { read_image(dir.file("text.png")); }, {"text.png", "not an image"});
  std::ofstream(dir.file("empty.jpg")).close();
  require_throws_with<FormatError>([&] { read_image(dir.file("empty.jpg")); }, {"empty.jpg", "empty file"});

  // A PNG cut short after its header: OpenCV cannot decode it.
  write_image(dir.file("ok.png"), random_image(3, 64, 64, 6, 255.0));
  const std::string png = read_file(dir.file("ok.png"));
  write_file_atomically(dir.file("cut.png"), png.substr(0, 60));
  require_throws_with<FormatError>([&] { read_image(dir.file("cut.png")); }, {"cut.png"});

  // The pixel limit: from the PNG header (before decoding) and after decoding (TIFF).
  const int64_t old = max_image_pixels();
  set_max_image_pixels(64 * 63);
  require_throws_with<FormatError>([&] { read_image(dir.file("ok.png")); },
                                   {"ok.png", "64 x 64 pixels exceeds the limit of 4032"});
  write_image(dir.file("ok.bmp"), random_image(3, 64, 64, 6, 255.0));
  require_throws_with<FormatError>([&] { read_image(dir.file("ok.bmp")); }, {"ok.bmp", "64 x 64 pixels"});
  write_image(dir.file("ok.jpg"), random_image(3, 64, 64, 6, 255.0));
  require_throws_with<FormatError>([&] { read_image(dir.file("ok.jpg")); }, {"ok.jpg", "64 x 64 pixels"});
  write_image(dir.file("ok.tif"), random_image(3, 64, 64, 6, 255.0));
  require_throws_with<FormatError>([&] { read_image(dir.file("ok.tif")); }, {"ok.tif", "exceeds the limit"});
  set_max_image_pixels(old);
  REQUIRE(read_image(dir.file("ok.png")).size(3) == 64);

  // Decompression bombs: headers that declare 60000 x 60000 pixels are refused before decoding.
  std::string bomb = png;
  const char big[4] = {0, 0, char(0xEA), 0x60};  // 60000, big endian
  bomb.replace(16, 4, big, 4);
  bomb.replace(20, 4, big, 4);
  write_file_atomically(dir.file("bomb.png"), bomb);
  require_throws_with<FormatError>([&] { read_image(dir.file("bomb.png")); },
                                   {"bomb.png", "60000 x 60000 pixels exceeds the limit of 100000000"});
  std::string jpg = read_file(dir.file("ok.jpg"));
  const size_t sof = jpg.find("\xFF\xC0");
  REQUIRE(sof != std::string::npos);
  jpg.replace(sof + 5, 2, big + 2, 2);  // height
  jpg.replace(sof + 7, 2, big + 2, 2);  // width
  write_file_atomically(dir.file("bomb.jpg"), jpg);
  require_throws_with<FormatError>([&] { read_image(dir.file("bomb.jpg")); },
                                   {"bomb.jpg", "60000 x 60000 pixels exceeds"});
  require_throws_with<ValueError>([&] { set_max_image_pixels(0); }, {"positive"});

  // Bad tensors on write: nothing is written.
  require_throws_with<ValueError>([&] { write_image(dir.file("w.png"), torch::zeros({2, 3, 4, 4})); },
                                  {"w.png", "expected shape", "[2, 3, 4, 4]"});
  require_throws_with<ValueError>([&] { write_image(dir.file("w.png"), torch::zeros({2, 4, 4})); },
                                  {"w.png", "1, 3 or 4 channels", "found 2"});
  require_throws_with<ValueError>([&] { write_image(dir.file("w.jpg"), torch::zeros({3, 4, 4}), 16); },
                                  {"w.jpg", "16-bit", ".png or .tif"});
  require_throws_with<ValueError>([&] { write_image(dir.file("w.png"), torch::zeros({3, 4, 4}, torch::kInt)); },
                                  {"w.png", "floating point"});
  auto nan = torch::zeros({3, 4, 4});
  nan[0][1][1] = std::numeric_limits<float>::quiet_NaN();
  require_throws_with<ValueError>([&] { write_image(dir.file("w.png"), nan); }, {"w.png", "1 non-finite"});
  require_throws_with<ValueError>([&] { write_image(dir.file("w.xyz"), torch::zeros({3, 4, 4})); },
                                  {"w.xyz", "no image writer", "'.xyz'"});
  REQUIRE_FALSE(std::filesystem::exists(dir.file("w.png")));
}

TEST_CASE("the official map PNG encodings: uv (u, 1 - v, 0), normals (n + 1) / 2, and back", "[io][image]") {
  TempDir dir;
  // Values on the 8-bit grid survive a PNG round trip exactly; a batch dimension is kept.
  const auto uv = random_image(2, 4, 5, 3, 255.0);               // 1 x 2 x 4 x 5 in [0, 1]
  const auto normals = random_image(3, 4, 5, 4, 255.0) * 2 - 1;  // 1 x 3 x 4 x 5, (n + 1) / 2 on the grid
  const auto uv_image = uv_png_image(uv);
  REQUIRE(uv_image.sizes() == torch::IntArrayRef({1, 3, 4, 5}));
  REQUIRE(uv_image.select(1, 2).abs().max().item<float>() == 0.0f);
  require_close(uv_image.slice(1, 0, 2), uv, 0.0);
  require_close(normals_png_image(normals), (normals + 1) / 2, 1e-7);
  write_image(dir.file("uv.png"), uv_image);
  write_image(dir.file("n.png"), normals_png_image(normals[0]));  // 3 x H x W works too
  require_close(uv_from_png_image(read_image(dir.file("uv.png"))), uv, 1e-7);
  require_close(normals_from_png_image(read_image(dir.file("n.png")))[0], normals[0], 1e-6);
  // Out-of-range values are clamped into the encoding, not wrapped.
  REQUIRE(normals_png_image(torch::full({3, 1, 1}, 3.0f)).max().item<float>() == 1.0f);
  require_throws_with<ValueError>([&] { uv_png_image(normals); }, {"uv_png_image", "2 x H x W", "[1, 3, 4, 5]"});
}

// The network modules, config, strict loading and predictor, on small random networks (the comparison with the
// official architecture's Python reference lives in tests/python/test_nn.py).
#include <torch/torch.h>

#include <fstream>

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/resize.h"
#include "pixel3dmm/io/safetensors.h"
#include "pixel3dmm/nn/detail/linear.h"
#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/predict/predictor.h"
#include "test_util.h"

using namespace pixel3dmm;
using pixel3dmm::test::require_close;
using pixel3dmm::test::require_throws_with;
using pixel3dmm::test::TempDir;

namespace {

// A small network of the official layout: ViT with 2 blocks of width 64, head with 1 layer of width 32.
nn::NetworkConfig tiny_config(nn::PredictionType type = nn::PredictionType::UV) {
  auto c = nn::NetworkConfig::official(type, "vit_small_patch16_224.dino");
  c.backbone.embed_dim(64).depth(2).num_heads(2);
  c.head.in_dim(64).embedding_dim(32).num_layers(1).num_heads(2);
  c.image_size = 64;
  return c;
}

nn::Pixel3DMMNet tiny_net(uint64_t seed, nn::PredictionType type = nn::PredictionType::UV) {
  torch::manual_seed(seed);
  nn::Pixel3DMMNet net(tiny_config(type));
  torch::NoGradGuard g;
  for (auto& p : net->parameters()) p.copy_(torch::randn(p.sizes()) * 0.2);
  net->eval();
  return net;
}

}  // namespace

TEST_CASE("timm names give the ViT layouts", "[nn]") {
  auto s = nn::VisionTransformerOptions::from_timm_name("vit_small_patch16_224.dino");
  CHECK(s.embed_dim() == 384);
  CHECK(s.num_heads() == 6);
  CHECK(s.patch_size() == 16);
  CHECK(s.pos_grid() == 14);
  CHECK_FALSE(s.layer_scale());
  auto b = nn::VisionTransformerOptions::from_timm_name("vit_base_patch16_224.dino");
  CHECK(b.embed_dim() == 768);
  CHECK(b.num_heads() == 12);
  auto d2 = nn::VisionTransformerOptions::from_timm_name("vit_base_patch14_reg4_dinov2.lvd142m");
  CHECK(d2.patch_size() == 14);
  CHECK(d2.img_size() == 518);
  CHECK(d2.layer_scale());
  CHECK(d2.reg_tokens() == 4);
  CHECK(d2.no_embed_class());
  CHECK(d2.num_prefix_tokens() == 5);
  auto d2n = nn::VisionTransformerOptions::from_timm_name("vit_large_patch14_dinov2");
  CHECK(d2n.depth() == 24);
  CHECK(d2n.reg_tokens() == 0);
  CHECK_FALSE(d2n.no_embed_class());
  require_throws_with<ValueError>([] { nn::VisionTransformerOptions::from_timm_name("resnet50"); },
                                  {"resnet50", "vit_small_patch16_224.dino"});
  require_throws_with<ValueError>([] { nn::VisionTransformerOptions::from_timm_name("vit_giant_patch14_dinov2"); },
                                  {"vit_giant_patch14_dinov2"});
}

TEST_CASE("the ViT has timm's parameter names and the position embedding follows the input grid", "[nn]") {
  auto o = nn::VisionTransformerOptions::from_timm_name("vit_small_patch14_reg4_dinov2");
  o.embed_dim(32).depth(1).num_heads(2);
  nn::VisionTransformer vit(o);
  auto params = vit->named_parameters();
  for (const char* name : {"patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "reg_token", "pos_embed",
                           "blocks.0.norm1.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
                           "blocks.0.attn.proj.weight", "blocks.0.ls1.gamma", "blocks.0.norm2.bias",
                           "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.bias", "blocks.0.ls2.gamma", "norm.weight"}) {
    INFO(name);
    CHECK(params.contains(name));
  }
  CHECK(params["pos_embed"].sizes() == torch::IntArrayRef({1, 37 * 37, 32}));  // no_embed_class: no prefix entries
  CHECK(params["reg_token"].sizes() == torch::IntArrayRef({1, 4, 32}));
  torch::NoGradGuard g;
  auto tokens = vit->forward(torch::randn({2, 3, 28, 42}));
  CHECK(tokens.sizes() == torch::IntArrayRef({2, 5 + 2 * 3, 32}));
  CHECK(vit->feature_map(torch::randn({1, 3, 28, 42})).sizes() == torch::IntArrayRef({1, 32, 2, 3}));
  require_throws_with<ValueError>([&] { vit->forward(torch::randn({1, 3, 30, 28})); }, {"multiples", "14"});
}

TEST_CASE("resample_abs_pos_embed keeps the prefix and resamples the grid", "[nn]") {
  auto pos = torch::randn({1, 1 + 4 * 4, 8});
  auto out = nn::resample_abs_pos_embed(pos, {8, 8}, {4, 4}, 1);
  CHECK(out.sizes() == torch::IntArrayRef({1, 65, 8}));
  CHECK(torch::equal(out.narrow(1, 0, 1), pos.narrow(1, 0, 1)));
  // a constant grid stays constant (the antialiased kernel's weights are normalised)
  auto flat = torch::ones({1, 16, 3});
  require_close(nn::resample_abs_pos_embed(flat, {7, 5}, {4, 4}, 0), torch::ones({1, 35, 3}), 1e-6);
  CHECK(nn::resample_abs_pos_embed(pos, {4, 4}, {4, 4}, 1).is_same(pos));
  require_throws_with<ValueError>([&] { nn::resample_abs_pos_embed(pos, {8, 8}, {5, 5}, 1); }, {"17 tokens"});
}

TEST_CASE("the head's per-pixel decoder equals transposed convolutions and the official unpatchify", "[nn]") {
  torch::manual_seed(1);
  nn::PredictionHead head(nn::PredictionHeadOptions().in_dim(24).embedding_dim(16).num_layers(1).num_heads(2).pred_dim(3));
  torch::NoGradGuard g;
  for (auto& p : head->parameters()) p.copy_(torch::randn(p.sizes()) * 0.3);
  const int64_t B = 2, h = 3, w = 4;
  auto feats = torch::randn({B, 24, h, w});
  auto got = head->forward(feats);
  REQUIRE(got.sizes() == torch::IntArrayRef({B, 3, 16 * h, 16 * w}));

  // the official path, op by op
  auto x = torch::cat({feats, head->view_embed.select(1, 0).expand({B, 16, h, w})}, 1);
  auto t = head->vol_decoder->forward(x.flatten(2).transpose(1, 2));  // B x hw x D
  auto m = t.transpose(1, 2).reshape({B, 16, h, w});
  for (auto* conv : {&head->t_conv1, &head->t_conv2, &head->t_conv3}) m = torch::gelu((*conv)->forward(m));
  const int64_t gh = m.size(2), gw = m.size(3);
  auto tok = head->token_2_patch_content->forward(m.permute({0, 2, 3, 1}).reshape({B, gh * gw, 16}));
  auto img = tok.reshape({B, gh, gw, 2, 2, 3}).permute({0, 5, 1, 3, 2, 4}).reshape({B, 3, 2 * gh, 2 * gw});
  require_close(got, img, 1e-5);
}

TEST_CASE("the head block replaces the stream with LN1 and LN3", "[nn]") {
  torch::manual_seed(2);
  nn::GroupAttBlock block(nn::GroupAttBlockOptions(16, 2));
  torch::NoGradGuard g;
  auto x = torch::randn({1, 10, 16}) * 5 + 3;
  // a block whose attention and MLP outputs are zero returns LN3(LN1(x)) (a pre-norm block would return x)
  for (auto& p : block->named_parameters())
    if (p.key().find("self_attn") != std::string::npos || p.key().find("mlp") != std::string::npos) p.value().zero_();
  auto ln = [](const torch::Tensor& t) { return torch::layer_norm(t, {16}, {}, {}, 1e-5); };
  require_close(block->forward(x), ln(ln(x)), 1e-5);
}

TEST_CASE("network config JSON round-trips and rejects bad input by name", "[nn]") {
  auto c = tiny_config(nn::PredictionType::Normals);
  c.source = {{"checkpoint", "normals.ckpt"}};
  auto back = nn::NetworkConfig::from_json(c.to_json());
  CHECK(back.to_json() == c.to_json());
  CHECK(back.head.pred_dim() == 3);

  auto j = c.to_json();
  j["head"]["num_layer"] = 3;
  require_throws_with<ValueError>([&] { nn::NetworkConfig::from_json(j, "n.json"); },
                                  {"n.json.head", "unknown key 'num_layer'", "num_layers"});
  j = c.to_json();
  j["prediction_type"] = "uv_map";  // a normals head (pred_dim 3) declared as UV
  require_throws_with<ValueError>([&] { nn::NetworkConfig::from_json(j, "n.json"); }, {"pred_dim 3", "uv_map"});
  j = c.to_json();
  j["image_size"] = 100;
  require_throws_with<ValueError>([&] { nn::NetworkConfig::from_json(j, "n.json"); }, {"image_size 100"});
  j = c.to_json();
  j["backbone"]["depth"] = "twelve";
  require_throws_with<ValueError>([&] { nn::NetworkConfig::from_json(j, "n.json"); }, {"'depth'"});
}

TEST_CASE("save_network and load_network round-trip; strict loading names every problem", "[nn]") {
  TempDir dir;
  auto net = tiny_net(3);
  const auto weights = dir.file("tiny.safetensors");
  nn::save_network(net, weights);
  auto loaded = nn::load_network(weights);
  CHECK_FALSE(loaded->is_training());
  torch::NoGradGuard g;
  auto x = torch::rand({1, 3, 64, 64});
  require_close(loaded->forward(x), net->forward(x), 0);
  CHECK(loaded->forward(x).sizes() == torch::IntArrayRef({1, 2, 64, 64}));

  auto state = nn::official_state_dict(net);
  CHECK(state.count("img_encoder.model.blocks.1.mlp.fc2.weight"));
  CHECK(state.count("vol_decoder.layers.0.self_attn.in_proj_weight"));
  CHECK(state.count("vol_decoder.layers.0.mlp2.3.bias"));
  CHECK(state.count("view_embed"));
  CHECK_FALSE(state.count("vol_decoder.layers.0.self_attn.in_proj_bias"));

  nn::TensorMap bad;
  for (const auto& [k, v] : state) bad[k] = v.clone();
  bad.erase("t_conv2.weight");
  bad.erase("img_encoder.model.norm.bias");
  bad["token_2_patch_content.weight"] = torch::zeros({12, 32});
  bad["img_encoder.model.head.weight"] = torch::zeros({3});  // ignorable only for backbone-alone loading
  bad["dir_norm.mlp.1.weight"] = torch::zeros({5});          // unused official module: ignored
  bad["vol_decoder.norm.weight"] = torch::zeros({32});
  auto fresh = tiny_net(4);
  require_throws_with<FormatError>([&] { nn::load_official_state_dict(fresh, bad, "bad.safetensors"); },
                                   {"bad.safetensors", "2 missing: img_encoder.model.norm.bias, t_conv2.weight",
                                    "1 unexpected: img_encoder.model.head.weight",
                                    "token_2_patch_content.weight (expected [8, 32], found [12, 32])"});
  // nothing was copied by the failed load
  require_close(fresh->head->t_conv1->weight, tiny_net(4)->head->t_conv1->weight, 0);

  require_throws_with<FileNotFound>([&] { nn::load_network(dir.file("nope.safetensors")); }, {"nope.json"});
  {
    std::ofstream f(dir.file("broken.json"));
    f << "{ \"image_size\": ";
  }
  require_throws_with<FormatError>([&] { nn::load_network(weights, dir.file("broken.json")); }, {"broken.json"});
}

TEST_CASE("backbone weights load alone from bare timm names", "[nn]") {
  TempDir dir;
  auto net = tiny_net(5);
  io::TensorMap timm;
  for (const auto& item : net->backbone->named_parameters()) timm[item.key()] = item.value();
  timm["head.weight"] = torch::zeros({1000, 64});  // a classifier is ignored
  io::write_safetensors(dir.file("vit.safetensors"), timm);
  auto other = tiny_net(6);
  nn::load_backbone_weights(other->backbone, dir.file("vit.safetensors"));
  require_close(other->backbone->pos_embed, net->backbone->pos_embed, 0);
  timm.erase("blocks.1.attn.qkv.bias");
  io::write_safetensors(dir.file("vit.safetensors"), timm);
  require_throws_with<FormatError>([&] { nn::load_backbone_weights(other->backbone, dir.file("vit.safetensors")); },
                                   {"vit.safetensors", "blocks.1.attn.qkv.bias"});
}

TEST_CASE("the predictor averages the mirror image as the official inference and batches consistently", "[predict]") {
  auto uv = tiny_net(7, nn::PredictionType::UV);
  auto normals = tiny_net(8, nn::PredictionType::Normals);
  predict::Predictor p(uv, normals);
  auto x = torch::rand({2, 3, 64, 64});
  auto r = p.predict(x);
  REQUIRE(r.uv.sizes() == torch::IntArrayRef({2, 2, 64, 64}));
  REQUIRE(r.normals.sizes() == torch::IntArrayRef({2, 3, 64, 64}));
  torch::NoGradGuard g;
  auto direct = uv->forward(x), mirrored = uv->forward(x.flip({3})).flip({3});
  auto want_u = (direct.select(1, 0) - mirrored.select(1, 0) + 0.015) / 2;
  require_close(r.uv_raw.select(1, 0), want_u, 1e-5);
  require_close(r.uv_raw.select(1, 1), (direct.select(1, 1) + mirrored.select(1, 1)) / 2, 1e-5);
  require_close(r.uv, torch::clamp((r.uv_raw + 1) / 2, 0, 1), 0);
  auto n = r.normals_raw / r.normals_raw.norm(2, 1, true);
  require_close(r.normals, torch::stack({n.select(1, 0), -n.select(1, 2), -n.select(1, 1)}, 1), 1e-6);
  // one image at a time gives the same, and so does running the mirror separately
  auto one = p.predict(x.narrow(0, 1, 1));
  require_close(one.uv_raw, r.uv_raw.narrow(0, 1, 1), 1e-5);
  predict::Predictor separate(uv, nullptr, {true, false});
  require_close(separate.predict(x).uv_raw, r.uv_raw, 1e-5);
  CHECK_FALSE(separate.predict(x).normals.defined());
  // other input sizes are resized to the network's
  CHECK(p.predict(torch::rand({1, 3, 50, 70})).uv.sizes() == torch::IntArrayRef({1, 2, 64, 64}));
  require_throws_with<ValueError>([&] { p.predict(torch::rand({1, 4, 64, 64})); }, {"Predictor input", "[*, 3, *, *]"});
  auto nan = torch::rand({1, 3, 64, 64});
  nan[0][0][0][0] = NAN;
  require_throws_with<ValueError>([&] { p.predict(nan); }, {"non-finite"});
  require_throws_with<ValueError>([&] { predict::Predictor(normals, nullptr); }, {"UV network", "normals"});
}

TEST_CASE("official PNG encodings truncate and reorder as the official inference", "[predict]") {
  auto uv = torch::tensor({-1.0f, 1.0f, 0.0f, 2.0f}).view({1, 2, 1, 2});
  auto px = predict::uv_png(uv);
  REQUIRE(px.sizes() == torch::IntArrayRef({1, 1, 2, 3}));
  // (o + 1) / 2 * 255: 0 -> 0, 1 -> 255, u=0 -> 127 (127.5 truncated), clamp(1.5) -> 255; channel 2 zero
  CHECK(px[0][0][0][0].item<int>() == 0);
  CHECK(px[0][0][1][0].item<int>() == 255);
  CHECK(px[0][0][0][1].item<int>() == 127);
  CHECK(px[0][0][1][1].item<int>() == 255);
  CHECK(px.select(3, 2).sum().item<int>() == 0);
  auto n = torch::tensor({0.0f, 0.0f, 2.0f}).view({1, 3, 1, 1});  // normalised (0, 0, 1)
  auto pn = predict::normals_png(n);
  // t = (0.5, 0.5, 1) -> [t0, 1 - t2, 1 - t1] = (0.5, 0, 0.5) -> 127, 0, 127
  CHECK(pn[0][0][0][0].item<int>() == 127);
  CHECK(pn[0][0][0][1].item<int>() == 0);
  CHECK(pn[0][0][0][2].item<int>() == 127);
  auto dec = predict::normals_from_raw(n);
  require_close(dec.view({3}), torch::tensor({0.0f, -1.0f, 0.0f}), 1e-7);
  CHECK(torch::isfinite(predict::normals_from_raw(torch::zeros({1, 3, 2, 2}))).all().item<bool>());
  CHECK(predict::normals_png(torch::zeros({1, 3, 2, 2})).sum().item<int>() == 0);

  TempDir dir;
  predict::write_png_rgb8(dir.file("n.png"), pn[0]);
  CHECK(std::filesystem::file_size(dir.file("n.png")) > 0);
  require_throws_with<Error>([&] { predict::write_png_rgb8(dir.file("no/such/dir/n.png"), pn[0]); }, {"n.png"});
}

TEST_CASE("Pillow-exact resize: identity, constants and a hand-computed 2x downsample", "[io]") {
  auto img = torch::randint(0, 256, {1, 3, 7, 9}, torch::kUInt8);
  CHECK(torch::equal(io::resize_pil_bicubic_u8(img, 7, 9), img));
  auto flat = torch::full({1, 1, 10, 6}, 77, torch::kUInt8);
  CHECK(torch::equal(io::resize_pil_bicubic_u8(flat, 4, 13), torch::full({1, 1, 4, 13}, 77, torch::kUInt8)));
  // 1 x 4 -> 1 x 2 horizontally: scale 2, support 4; output 0 centred at 1.0 reads all 4 inputs at distances
  // (0.25, 0.25, 0.75, 1.25) (scaled by 1/2) with the a = -0.5 kernel: 0.8671875, 0.8671875, 0.2265625, -0.0703125.
  auto row = torch::tensor({0, 100, 200, 40}, torch::kUInt8).view({1, 1, 1, 4});
  auto out = io::resize_pil_bicubic_u8(row, 1, 2);
  const double v0 = (0 * 0.8671875 + 100 * 0.8671875 + 200 * 0.2265625 + 40 * -0.0703125) / 1.890625;  // 68.35
  CHECK(out[0][0][0][0].item<int>() == int(std::lround(v0)));
  auto f = io::resize_pil_bicubic(torch::rand({1, 3, 5, 5}), 5, 5);
  CHECK(f.sizes() == torch::IntArrayRef({1, 3, 5, 5}));
  require_throws_with<ValueError>([&] { io::resize_pil_bicubic_u8(img.to(torch::kFloat), 3, 3); }, {"Byte"});
}

TEST_CASE("the autograd and the inference paths compute the same network", "[nn]") {
  auto net = tiny_net(9, nn::PredictionType::Normals);
  net->train();
  auto x = torch::rand({2, 3, 64, 64});
  auto with_grad = net->forward(x);  // differentiable ops (parameters require grad)
  REQUIRE(with_grad.requires_grad());
  with_grad.sum().backward();
  for (const auto& p : net->named_parameters()) {
    INFO(p.key());
    REQUIRE(p.value().grad().defined());
  }
  torch::NoGradGuard g;
  require_close(net->forward(x), with_grad.detach(), 1e-5);  // per-head attention, blocked decoder
}

TEST_CASE("the threaded inference GEMM equals at::linear, and autograd takes at::linear's path", "[nn]") {
  const int before = torch::get_num_threads();
  auto g = torch::Generator(at::detail::createCPUGenerator(7));
  // parameters that require grad, as a network's: the workers must not record them (grad mode is thread-local)
  const auto w = torch::randn({40, 24}, g).requires_grad_(true), b = torch::randn({40}, g).requires_grad_(true);
  for (int threads : {1, 2, 3}) {
    torch::set_num_threads(threads);
    for (int64_t rows : {5, 129, 1001}) {  // below the split, just above it, uneven chunks
      INFO("threads " << threads << ", rows " << rows);
      const auto x = torch::randn({1, rows, 24}, g);
      torch::NoGradGuard no_grad;
      const auto y = nn::detail::linear(x, w, b);
      REQUIRE(y.sizes() == torch::IntArrayRef({1, rows, 40}));
      require_close(y, at::linear(x, w, b), 1e-5);
      require_close(nn::detail::linear(x, w, {}), at::linear(x, w), 1e-5);
      // a transposed weight view (the head's decoder passes W^T of a K x N matrix)
      const auto wk = w.detach().t().contiguous();
      require_close(nn::detail::linear(x, wk.t(), b), at::linear(x, w, b), 1e-5);
    }
  }
  torch::set_num_threads(2);
  const auto wg = w.detach().clone().requires_grad_(true);
  const auto x = torch::randn({300, 24}, g);
  auto y = nn::detail::linear(x, wg, b.detach());
  REQUIRE(y.requires_grad());
  y.sum().backward();
  require_close(wg.grad(), x.sum(0).expand({40, 24}), 1e-4);
  // a whole network large enough for the split GEMMs (577 tokens) and the head's blocked decoder (9216 rows)
  auto net = tiny_net(9, nn::PredictionType::Normals);
  const auto image = torch::rand({1, 3, 384, 384}, g);
  const auto autograd = net->forward(image).detach();
  {
    torch::NoGradGuard no_grad;
    require_close(net->forward(image), autograd, 1e-5);
  }
  torch::set_num_threads(before);
}

TEST_CASE("precision bf16 runs bfloat16 copies of the networks, or is refused without native bfloat16", "[predict]") {
  CHECK(predict::parse_precision("float32") == predict::Precision::Float32);
  CHECK(predict::parse_precision("fp32") == predict::Precision::Float32);
  CHECK(predict::parse_precision("bf16") == predict::Precision::BFloat16);
  CHECK(predict::to_string(predict::Precision::BFloat16) == "bf16");
  require_throws_with<ValueError>([] { predict::parse_precision("fp16"); }, {"float32 or bf16", "fp16"});

  auto uv = tiny_net(7, nn::PredictionType::UV);
  auto normals = tiny_net(8, nn::PredictionType::Normals);
  predict::PredictorOptions options;
  options.precision = predict::Precision::BFloat16;
  if (!predict::cpu_has_native_bf16()) {
    require_throws_with<ValueError>([&] { predict::Predictor(uv, normals, options); },
                                    {"native bfloat16", "use precision float32"});
    return;
  }
  const predict::Predictor p16(uv, normals, options);
  const predict::Predictor p32(uv, normals);
  const auto x = torch::rand({1, 3, 64, 64});
  const auto r16 = p16.predict(x), r32 = p32.predict(x);
  REQUIRE(r16.uv_raw.scalar_type() == torch::kFloat);
  REQUIRE(r16.normals.scalar_type() == torch::kFloat);
  // bfloat16 keeps 8 significant bits: close to float32, but not equal
  const double uv_err = (r16.uv_raw - r32.uv_raw).abs().max().item<double>();
  CHECK(uv_err > 0);
  CHECK(uv_err < 0.1 * r32.uv_raw.abs().max().item<double>());
  CHECK((r16.normals - r32.normals).abs().max().item<double>() < 0.2);
  // the caller's networks stay float32; the predictor holds bfloat16 copies
  CHECK(uv->parameters()[0].scalar_type() == torch::kFloat);
  CHECK(p16.uv_net()->parameters()[0].scalar_type() == torch::kBFloat16);
}

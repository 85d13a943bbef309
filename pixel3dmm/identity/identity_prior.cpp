#include "pixel3dmm/identity/identity_prior.h"

#include "pixel3dmm/core/error.h"
#include "pixel3dmm/io/npy.h"

namespace pixel3dmm::identity {

torch::Tensor keypoints_from_landmarks68(const torch::Tensor& landmarks) {
  PIXEL3DMM_CHECK(landmarks.defined() && landmarks.numel() == 68 * 2 && landmarks.size(-1) == 2 &&
                      (landmarks.dim() == 2 || (landmarks.dim() == 3 && landmarks.size(0) == 1)),
                  "keypoints from landmarks: expected 68 x 2 (or 1 x 68 x 2) landmarks, found ",
                  landmarks.defined() ? landmarks.sizes() : torch::IntArrayRef{});
  const auto l = landmarks.reshape({68, 2}).to(torch::kFloat32);
  return torch::stack({l.slice(0, 36, 42).mean(0), l.slice(0, 42, 48).mean(0), l[30], l[48], l[54]});
}

IdentityPrior::IdentityPrior(const IdentityPriorOptions& options) : options_(options) {
  PIXEL3DMM_CHECK(options_.mica.empty() || options_.code.empty(),
                  "identity prior: give MICA weights or an identity code, not both (", options_.mica, ", ",
                  options_.code, ")");
  PIXEL3DMM_CHECK(options_.scrfd.empty() || !options_.mica.empty(),
                  "identity prior: SCRFD (", options_.scrfd, ") finds MICA's keypoints; give the MICA weights too");
  if (!options_.mica.empty()) mica_ = load_mica(options_.mica);
  if (!options_.scrfd.empty()) scrfd_ = std::make_shared<ScrfdDetector>(options_.scrfd);
  if (!options_.code.empty()) {
    code_ = io::read_npy(options_.code);
    PIXEL3DMM_CHECK_FORMAT(code_.is_floating_point() && (code_.dim() == 1 || (code_.dim() == 2 && code_.size(0) == 1)) &&
                               code_.numel() > 0,
                           options_.code, "expected an identity code of shape [K] or [1, K] (float), found ",
                           code_.sizes(), " ", code_.dtype());
    code_ = code_.reshape({-1}).to(torch::kFloat32);
    PIXEL3DMM_CHECK_FORMAT(torch::isfinite(code_).all().item<bool>(), options_.code,
                           "the identity code holds NaN or infinite values");
  }
}

torch::Tensor IdentityPrior::code(const torch::Tensor& crop, const torch::Tensor& landmarks,
                                  const std::string& source) const {
  if (code_.defined()) return code_;
  if (!mica_) return {};
  PIXEL3DMM_CHECK(crop.defined() && (crop.dim() == 3 || (crop.dim() == 4 && crop.size(0) == 1)) &&
                      crop.size(-3) == 3,
                  source, ": identity prior: expected a 1 x 3 x S x S crop, found ",
                  crop.defined() ? crop.sizes() : torch::IntArrayRef{});
  // MICA reads the saved crop as 8-bit pixels (official: cv2.imread of the 512 x 512 crop).
  const auto rgb = crop.reshape({3, crop.size(-2), crop.size(-1)})
                       .clamp(0, 1)
                       .mul(255)
                       .round()
                       .to(torch::kUInt8)
                       .permute({1, 2, 0})
                       .contiguous();
  try {
    const auto keypoints = scrfd_ ? detect_five_keypoints(*scrfd_, rgb) : keypoints_from_landmarks68(landmarks);
    if (!keypoints.defined()) return {};  // SCRFD found no face: no code from this crop, as officially
    Mica mica = mica_;  // a handle: forward is not const
    return identity_code(mica, rgb, keypoints);
  } catch (const ValueError& e) {
    throw ValueError((source.empty() ? std::string("identity prior") : source) + ": " + e.what());
  }
}

std::string IdentityPrior::describe() const {
  if (mica_)
    return "MICA (" + options_.mica + "; keypoints " +
           (scrfd_ ? "by SCRFD " + options_.scrfd : std::string("from the 68 landmarks")) + ")";
  if (code_.defined()) return options_.code;
  return "none";
}

}  // namespace pixel3dmm::identity

#include "pixel3dmm/synth/synthetic_flame.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::synth {

using flame::FlameModel;

namespace {

constexpr double kPi = 3.14159265358979323846;

struct V3 {
  double x = 0, y = 0, z = 0;
};
V3 operator+(V3 a, V3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
V3 operator-(V3 a, V3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
V3 operator*(V3 a, double s) { return {a.x * s, a.y * s, a.z * s}; }
double dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
V3 cross(V3 a, V3 b) { return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x}; }
double norm(V3 a) { return std::sqrt(dot(a, a)); }

/// 0 below e0, 1 beyond e1 (either order), C1 in between.
double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3.0 - 2.0 * t);
}

double gauss(double x, double y, double x0, double y0, double sx, double sy) {
  const double dx = (x - x0) / sx, dy = (y - y0) / sy;
  return std::exp(-0.5 * (dx * dx + dy * dy));
}

/// Portable random numbers: std::mt19937_64's output is specified exactly, the standard distributions are not,
/// so the same seed gives the same model with every standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = 0.0;
    while (u1 <= 0.0) u1 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), a = 2.0 * kPi * uniform();
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return r * std::cos(a);
  }
  V3 normal3() { return {normal(), normal(), normal()}; }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

/// A smooth random vector field: a sum of a few random Fourier features of angular frequency ~ `freq` rad/m.
class SmoothField {
 public:
  SmoothField(Rng& rng, double freq) {
    for (int m = 0; m < kTerms; ++m) {
      omega_[m] = rng.normal3() * freq;
      coef_[m] = rng.normal3();
      phase_[m] = 2.0 * kPi * rng.uniform();
    }
  }
  V3 operator()(V3 p) const {
    V3 out;
    for (int m = 0; m < kTerms; ++m) out = out + coef_[m] * std::sin(dot(omega_[m], p) + phase_[m]);
    return out;
  }

 private:
  static constexpr int kTerms = 4;
  std::array<V3, kTerms> omega_, coef_;
  std::array<double, kTerms> phase_{};
};

// ---- Geometry (metres; x to the subject's left = image right, y up, z toward the camera) ----
constexpr double kAx = 0.078, kAy = 0.105, kAz = 0.095;            // skull ellipsoid half-axes
constexpr double kThetaMax = 0.85 * kPi, kThetaNeck = 0.62 * kPi;  // polar angle of the neck cut / neck start
constexpr double kNeckRx = 0.052, kNeckRz = 0.058, kNeckDrop = 0.06, kNeckShift = -0.012;
constexpr double kEyeX = 0.033, kEyeY = 0.022, kEyeRadius = 0.0115, kEyeInset = 0.004;
constexpr double kMouthY = -0.046;

/// Frontal relief of the face (added along +z): symmetric in x.
double face_relief(double x, double y) {
  const double ax = std::abs(x);
  double d = 0.0;
  d += 0.022 * gauss(x, y, 0.0, -0.005, 0.009, 0.022);     // nose ridge
  d += 0.010 * gauss(x, y, 0.0, -0.018, 0.009, 0.008);     // nose tip
  d += 0.005 * gauss(ax, y, 0.012, -0.022, 0.006, 0.006);  // alae
  d -= 0.012 * gauss(ax, y, kEyeX, kEyeY, 0.014, 0.010);   // eye sockets
  d += 0.006 * gauss(ax, y, 0.032, 0.040, 0.020, 0.006);   // brow ridges
  d += 0.005 * gauss(ax, y, 0.045, -0.005, 0.015, 0.015);  // cheekbones
  d += 0.005 * gauss(x, y, 0.0, -0.040, 0.018, 0.005);     // upper lip
  d += 0.004 * gauss(x, y, 0.0, -0.052, 0.016, 0.005);     // lower lip
  d -= 0.004 * gauss(x, y, 0.0, kMouthY, 0.020, 0.0018);   // mouth slit
  d += 0.008 * gauss(x, y, 0.0, -0.078, 0.020, 0.012);     // chin
  return d;
}

double frontness(double cos_phi) { return smoothstep(0.2, 0.7, cos_phi); }

double ear_bump(double y, double phi) {
  const double dp = std::abs(phi) - 0.5 * kPi;
  return 0.012 * std::exp(-(y * y) / (2.0 * 0.014 * 0.014) - dp * dp / (2.0 * 0.12 * 0.12));
}

/// The head surface at polar angle theta (from +y) and azimuth phi (0 = front, +pi/2 = +x).
V3 head_point(double theta, double phi) {
  const double t = smoothstep(kThetaNeck, kThetaMax, theta);
  const double rx = (1.0 - t) * kAx * std::sin(theta) + t * kNeckRx;
  const double rz = (1.0 - t) * kAz * std::sin(theta) + t * kNeckRz;
  V3 p{rx * std::sin(phi), kAy * std::cos(theta) - kNeckDrop * t * t, t * kNeckShift + rz * std::cos(phi)};
  p.z += face_relief(p.x, p.y) * frontness(std::cos(phi));
  const double e = ear_bump(p.y, phi);
  p.x += e * std::sin(phi);
  p.z += e * std::cos(phi);
  return p;
}

/// Centre of the eyeball on side +1 (left, +x) or -1 (right), set into its socket.
V3 eye_centre(double side) {
  const double x = side * kEyeX, y = kEyeY;
  const double z0 = kAz * std::sqrt(1.0 - (x / kAx) * (x / kAx) - (y / kAy) * (y / kAy));
  const double z = z0 + face_relief(x, y) * frontness(z0 / std::hypot(x, z0)) - kEyeInset;
  return {x, y, z};
}

double cos_azimuth(V3 p) {
  const double r = std::hypot(p.x, p.z);
  return r > 0 ? p.z / r : 1.0;
}

/// Moller-Trumbore, double-sided. Returns t (or +inf) and the barycentrics of b and c.
double intersect(V3 o, V3 d, V3 a, V3 b, V3 c, double& u, double& v) {
  const V3 e1 = b - a, e2 = c - a, pv = cross(d, e2);
  const double det = dot(e1, pv);
  if (std::abs(det) < 1e-18) return std::numeric_limits<double>::infinity();
  const double inv = 1.0 / det;
  const V3 tv = o - a;
  u = dot(tv, pv) * inv;
  if (u < -1e-12 || u > 1.0 + 1e-12) return std::numeric_limits<double>::infinity();
  const V3 qv = cross(tv, e1);
  v = dot(d, qv) * inv;
  if (v < -1e-12 || u + v > 1.0 + 1e-12) return std::numeric_limits<double>::infinity();
  const double t = dot(e2, qv) * inv;
  return t > 1e-12 ? t : std::numeric_limits<double>::infinity();
}

struct Hit {
  int64_t face = -1;
  std::array<double, 3> bary{};
  V3 point;
};

struct Mesh {
  std::vector<V3> v;
  std::vector<std::array<int64_t, 3>> f;
};

/// First hit of the ray among the candidate faces.
Hit cast(const Mesh& m, const std::vector<int64_t>& candidates, V3 o, V3 d) {
  Hit best;
  double best_t = std::numeric_limits<double>::infinity();
  for (int64_t fi : candidates) {
    const auto& f = m.f[fi];
    double u = 0, v = 0;
    const double t = intersect(o, d, m.v[f[0]], m.v[f[1]], m.v[f[2]], u, v);
    if (t < best_t) {
      best_t = t;
      best.face = fi;
      best.bary = {1.0 - u - v, u, v};
      best.point = o + d * t;
    }
  }
  if (best.face < 0) throw Error("synthetic_flame: internal error: a landmark ray missed the head mesh");
  return best;
}

/// iBUG-68 landmarks 17..67 (brows, nose, eyes, mouth) in the face's frontal (x, y), metres.
constexpr std::array<std::array<double, 2>, 51> kStaticLandmarks = {{
    {-0.058, 0.038},  {-0.048, 0.045},  {-0.037, 0.047},  {-0.026, 0.046}, {-0.015, 0.042},  // 17-21 brow
    {0.015, 0.042},   {0.026, 0.046},   {0.037, 0.047},   {0.048, 0.045},  {0.058, 0.038},   // 22-26 brow
    {0.0, 0.030},     {0.0, 0.018},     {0.0, 0.006},     {0.0, -0.006},                     // 27-30 bridge
    {-0.013, -0.019}, {-0.007, -0.021}, {0.0, -0.022},    {0.007, -0.021}, {0.013, -0.019},  // 31-35 nostrils
    {-0.047, 0.022},  {-0.039, 0.028},  {-0.028, 0.028},  {-0.019, 0.021}, {-0.028, 0.016},  {-0.039, 0.016},  // 36-41
    {0.019, 0.021},   {0.028, 0.028},   {0.039, 0.028},   {0.047, 0.022},  {0.039, 0.016},   {0.028, 0.016},   // 42-47
    {-0.024, -0.046}, {-0.015, -0.040}, {-0.006, -0.037}, {0.0, -0.038},   {0.006, -0.037},  {0.015, -0.040},
    {0.024, -0.046},  {0.015, -0.053},  {0.007, -0.056},  {0.0, -0.057},   {-0.007, -0.056}, {-0.015, -0.053},  // 48-59
    {-0.019, -0.046}, {-0.007, -0.044}, {0.0, -0.0445},   {0.007, -0.044}, {0.019, -0.046},  {0.007, -0.048},
    {0.0, -0.0485},   {-0.007, -0.048},  // 60-67 inner lips
}};

constexpr int64_t kContour = 17, kYawBins = 79, kYawHalf = 39;

torch::Tensor to_tensor(const std::vector<double>& data, std::vector<int64_t> shape) {
  return torch::tensor(data, torch::kDouble).reshape(shape);
}
torch::Tensor to_index_tensor(const std::vector<int64_t>& data, std::vector<int64_t> shape) {
  return torch::tensor(data, torch::kLong).reshape(shape);
}

}  // namespace

SyntheticLayout synthetic_layout(int64_t n) {
  PIXEL3DMM_CHECK(n >= 100 && n <= 2000000, "synthetic_layout: vertices: expected a count in [100, 2000000], found ",
                  n);
  SyntheticLayout best;
  double best_score = std::numeric_limits<double>::infinity();
  // FLAME's proportions: eyeballs ~10.9% of the vertices each, 17 x 32 eyeball grid, 30 x 131 head grid.
  for (const bool strict : {true, false}) {
    const double er_lo = strict ? 1.4 : 1.0, er_hi = strict ? 2.6 : 4.0;
    const double f_lo = strict ? 0.06 : 0.02, f_hi = strict ? 0.16 : 0.25;
    const double h_lo = strict ? 2.5 : 1.2, h_hi = strict ? 6.0 : 12.0;
    for (int64_t er = 3; er <= 120; ++er) {
      for (int64_t ec = 6; ec <= 4 * er; ++ec) {
        const double eratio = static_cast<double>(ec) / er;
        const int64_t ne = 2 + er * ec;
        const double frac = static_cast<double>(ne) / n;
        if (eratio < er_lo || eratio > er_hi || frac < f_lo || frac > f_hi) continue;
        const int64_t rc = n - 1 - 2 * ne;
        if (rc < 32) continue;
        for (int64_t R = 4; R * R <= rc; ++R) {
          if (rc % R) continue;
          const int64_t C = rc / R;
          const double hratio = static_cast<double>(C) / R;
          if (C < 8 || hratio < h_lo || hratio > h_hi) continue;
          const double score = std::abs(std::log(hratio / 4.37)) + std::abs(std::log(eratio / 1.88)) +
                               2.0 * std::abs(std::log(frac / 0.1087));
          if (score < best_score) {
            best_score = score;
            best = {R, C, er, ec};
          }
        }
      }
    }
    if (best.head_rings > 0) break;
  }
  PIXEL3DMM_CHECK(best.head_rings > 0, "synthetic_layout: no head + eyeball grid has exactly ", n, " vertices; try ",
                  n - 1, " or ", n + 1);
  return best;
}

FlameModel synthetic_flame(const SyntheticFlameOptions& options) {
  const int64_t S = options.n_shape(), E = options.n_expr();
  PIXEL3DMM_CHECK(S >= 0 && E >= 0, "synthetic_flame: expected non-negative n_shape and n_expr, found ", S, " and ", E);
  const SyntheticLayout L = synthetic_layout(options.vertices());
  const int64_t R = L.head_rings, C = L.head_columns, er = L.eye_rings, ec = L.eye_columns;
  const int64_t H = L.head_vertices(), NE = L.eye_vertices(), V = L.n_vertices();
  const int64_t left0 = H, right0 = H + NE;

  Mesh mesh;
  mesh.v.resize(V);
  std::vector<double> theta_of(V, 0.0), phi_of(V, 0.0);
  std::vector<int64_t> ring_of(V, -1);  // head ring (0 = pole), -1 for eyeballs
  const auto hv = [&](int64_t r, int64_t c) { return 1 + (r - 1) * C + ((c % C) + C) % C; };
  mesh.v[0] = head_point(0.0, 0.0);
  ring_of[0] = 0;
  for (int64_t r = 1; r <= R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const double theta = kThetaMax * r / R, phi = -kPi + 2.0 * kPi * c / C;
      const int64_t i = hv(r, c);
      mesh.v[i] = head_point(theta, phi);
      theta_of[i] = theta;
      phi_of[i] = phi;
      ring_of[i] = r;
    }
  const V3 centre_l = eye_centre(+1.0), centre_r = eye_centre(-1.0);
  const auto ev = [&](int64_t i, int64_t j) { return 1 + (i - 1) * ec + (j % ec); };  // local eyeball index
  for (int side = 0; side < 2; ++side) {
    const int64_t base = side == 0 ? left0 : right0;
    const double sx = side == 0 ? 1.0 : -1.0;
    const V3 centre = side == 0 ? centre_l : centre_r;
    // A UV sphere with its first pole on +z (the gaze): (sin a sin b, -sin a cos b, cos a).
    const auto put = [&](int64_t local, double a, double b) {
      const V3 d{std::sin(a) * std::sin(b), -std::sin(a) * std::cos(b), std::cos(a)};
      mesh.v[base + local] = centre + V3{sx * d.x, d.y, d.z} * kEyeRadius;
    };
    put(0, 0.0, 0.0);
    for (int64_t i = 1; i <= er; ++i)
      for (int64_t j = 0; j < ec; ++j) put(ev(i, j), kPi * i / (er + 1), 2.0 * kPi * j / ec);
    put(NE - 1, kPi, 0.0);
  }

  // ---- faces and texture coordinates ----
  std::vector<std::array<double, 2>> vt;
  std::vector<std::array<int64_t, 3>> ft;
  std::vector<std::array<double, 2>> vertex_uv(V);
  const double v_lo = 0.25;  // head UV band [0.25, 1]; eyeballs below
  const auto ring_v = [&](int64_t r) { return v_lo + (1.0 - v_lo) * (1.0 - static_cast<double>(r) / R); };
  const auto head_vt = [&](int64_t r, int64_t c) { return (r - 1) * (C + 1) + c; };  // c in [0, C]
  for (int64_t r = 1; r <= R; ++r)
    for (int64_t c = 0; c <= C; ++c) vt.push_back({static_cast<double>(c) / C, ring_v(r)});
  const int64_t head_pole_vt = static_cast<int64_t>(vt.size());
  for (int64_t c = 0; c < C; ++c) vt.push_back({(c + 0.5) / C, 1.0});
  vertex_uv[0] = {0.5, 1.0};
  for (int64_t r = 1; r <= R; ++r)
    for (int64_t c = 0; c < C; ++c) vertex_uv[hv(r, c)] = {static_cast<double>(c) / C, ring_v(r)};
  for (int64_t c = 0; c < C; ++c) {
    mesh.f.push_back({0, hv(1, c), hv(1, c + 1)});
    ft.push_back({head_pole_vt + c, head_vt(1, c), head_vt(1, c + 1)});
  }
  for (int64_t r = 1; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t a = hv(r, c), b = hv(r, c + 1), cc = hv(r + 1, c), d = hv(r + 1, c + 1);
      const int64_t ta = head_vt(r, c), tb = head_vt(r, c + 1), tc = head_vt(r + 1, c), td = head_vt(r + 1, c + 1);
      mesh.f.push_back({a, d, b});
      ft.push_back({ta, td, tb});
      mesh.f.push_back({a, cc, d});
      ft.push_back({ta, tc, td});
    }
  const int64_t head_faces = static_cast<int64_t>(mesh.f.size());
  for (int side = 0; side < 2; ++side) {
    const int64_t base = side == 0 ? left0 : right0;
    const double u0 = side == 0 ? 0.02 : 0.52, du = 0.46, v0 = 0.02, dv = 0.2;
    const int64_t vt0 = static_cast<int64_t>(vt.size());
    const auto eye_v = [&](int64_t i) { return v0 + dv * (1.0 - static_cast<double>(i) / (er + 1)); };
    for (int64_t i = 1; i <= er; ++i)
      for (int64_t j = 0; j <= ec; ++j) vt.push_back({u0 + du * j / ec, eye_v(i)});
    const int64_t top_vt = static_cast<int64_t>(vt.size());
    for (int64_t j = 0; j < ec; ++j) vt.push_back({u0 + du * (j + 0.5) / ec, v0 + dv});
    const int64_t bottom_vt = static_cast<int64_t>(vt.size());
    for (int64_t j = 0; j < ec; ++j) vt.push_back({u0 + du * (j + 0.5) / ec, v0});
    const auto tv = [&](int64_t i, int64_t j) { return vt0 + (i - 1) * (ec + 1) + j; };
    vertex_uv[base] = {u0 + 0.5 * du, v0 + dv};
    vertex_uv[base + NE - 1] = {u0 + 0.5 * du, v0};
    for (int64_t i = 1; i <= er; ++i)
      for (int64_t j = 0; j < ec; ++j) vertex_uv[base + ev(i, j)] = vt[tv(i, j)];
    // The right eyeball is the mirror image of the left: reverse its winding to keep normals outward.
    const auto emit = [&](std::array<int64_t, 3> f, std::array<int64_t, 3> t) {
      if (side == 1) {
        std::swap(f[1], f[2]);
        std::swap(t[1], t[2]);
      }
      mesh.f.push_back({base + f[0], base + f[1], base + f[2]});
      ft.push_back(t);
    };
    for (int64_t j = 0; j < ec; ++j) emit({0, ev(1, j), ev(1, j + 1)}, {top_vt + j, tv(1, j), tv(1, j + 1)});
    for (int64_t i = 1; i < er; ++i)
      for (int64_t j = 0; j < ec; ++j) {
        const int64_t a = ev(i, j), b = ev(i, j + 1), cc = ev(i + 1, j), d = ev(i + 1, j + 1);
        emit({a, d, b}, {tv(i, j), tv(i + 1, j + 1), tv(i, j + 1)});
        emit({a, cc, d}, {tv(i, j), tv(i + 1, j), tv(i + 1, j + 1)});
      }
    for (int64_t j = 0; j < ec; ++j)
      emit({ev(er, j), NE - 1, ev(er, j + 1)}, {tv(er, j), bottom_vt + j, tv(er, j + 1)});
  }

  // ---- joints: J_regressor rows average vertex sets (neck cut ring, two head rings, the eyeballs) ----
  const auto ring_nearest = [&](double y) {
    int64_t best = 1;
    for (int64_t r = 1; r <= R; ++r)
      if (std::abs(mesh.v[hv(r, 0)].y - y) < std::abs(mesh.v[hv(best, 0)].y - y)) best = r;
    return best;
  };
  std::vector<double> jreg(5 * V, 0.0);
  const auto average_ring = [&](int64_t joint, int64_t r) {
    for (int64_t c = 0; c < C; ++c) jreg[joint * V + hv(r, c)] = 1.0 / C;
  };
  average_ring(0, R);                    // root: the neck cut
  average_ring(1, ring_nearest(-0.07));  // neck: the skull base
  average_ring(2, ring_nearest(-0.02));  // jaw: hinge height
  for (int64_t i = 0; i < NE; ++i) {
    jreg[3 * V + left0 + i] = 1.0 / NE;
    jreg[4 * V + right0 + i] = 1.0 / NE;
  }

  // ---- skinning weights ----
  std::vector<double> weights(V * 5, 0.0);
  std::vector<double> w_neck(V, 0.0), w_jaw(V, 0.0);
  for (int64_t i = 0; i < H; ++i) {
    const V3 p = mesh.v[i];
    const double w_root = 1.0 - smoothstep(-0.15, -0.105, p.y);
    const double yb = kMouthY + 0.02 * (p.x / 0.075) * (p.x / 0.075);  // jaw line rises toward the ears
    const double j =
        smoothstep(yb + 0.004, yb - 0.012, p.y) * smoothstep(-0.01, 0.03, p.z) * smoothstep(-0.125, -0.095, p.y);
    w_jaw[i] = (1.0 - w_root) * j;
    w_neck[i] = (1.0 - w_root) * (1.0 - j);
    weights[i * 5 + 0] = w_root;
    weights[i * 5 + 1] = w_neck[i];
    weights[i * 5 + 2] = w_jaw[i];
  }
  for (int64_t i = 0; i < NE; ++i) {
    weights[(left0 + i) * 5 + 3] = 1.0;
    weights[(right0 + i) * 5 + 4] = 1.0;
  }

  // ---- identity and expression bases, pose correctives (seeded) ----
  Rng rng(options.seed() * 0x9E3779B97F4A7C15ull + 0x5EED);
  const int64_t K = S + E;
  std::vector<double> shapedirs(V * 3 * K, 0.0);
  std::vector<V3> field(V);
  const auto put_component = [&](int64_t k, double amplitude) {
    double peak = 0.0;
    for (int64_t i = 0; i < H; ++i) peak = std::max(peak, norm(field[i]));
    const double s = peak > 0 ? amplitude / peak : 0.0;
    for (int64_t i = 0; i < V; ++i) {
      shapedirs[(i * 3 + 0) * K + k] = field[i].x * s;
      shapedirs[(i * 3 + 1) * K + k] = field[i].y * s;
      shapedirs[(i * 3 + 2) * K + k] = field[i].z * s;
    }
  };
  for (int64_t k = 0; k < S; ++k) {
    const SmoothField f(rng, 6.0 + 40.0 * std::pow(static_cast<double>(k) / std::max<int64_t>(S, 1), 0.7));
    for (int64_t i = 0; i < H; ++i) field[i] = f(mesh.v[i]);
    const V3 dl = f(centre_l), dr = f(centre_r);  // eyeballs move rigidly with the identity
    for (int64_t i = 0; i < NE; ++i) {
      field[left0 + i] = dl;
      field[right0 + i] = dr;
    }
    put_component(k, 0.012 / (1.0 + k / 6.0));
  }
  std::vector<double> face_weight(V, 0.0);
  for (int64_t i = 0; i < H; ++i) {
    const V3 p = mesh.v[i];
    face_weight[i] =
        smoothstep(0.1, 0.5, cos_azimuth(p)) * smoothstep(-0.115, -0.085, p.y) * (1.0 - smoothstep(0.055, 0.085, p.y));
  }
  for (int64_t k = 0; k < E; ++k) {
    const SmoothField f(rng, 15.0 + 60.0 * std::pow(static_cast<double>(k) / std::max<int64_t>(E, 1), 0.7));
    for (int64_t i = 0; i < V; ++i) field[i] = i < H ? f(mesh.v[i]) * face_weight[i] : V3{};
    put_component(S + k, 0.006 / (1.0 + k / 8.0));
  }
  constexpr int64_t P = 36;
  std::vector<double> posedirs(V * 3 * P, 0.0);
  for (int64_t joint = 1; joint <= 2; ++joint)
    for (int64_t e = 0; e < 9; ++e) {
      const SmoothField f(rng, 25.0);
      const int64_t col = (joint - 1) * 9 + e;
      double peak = 0.0;
      for (int64_t i = 0; i < H; ++i) {
        const double region = joint == 1 ? 4.0 * w_neck[i] * (1.0 - w_neck[i]) : w_jaw[i];
        field[i] = f(mesh.v[i]) * region;
        peak = std::max(peak, norm(f(mesh.v[i])));
      }
      for (int64_t i = 0; i < H; ++i) {
        const V3 d = field[i] * (peak > 0 ? 0.003 / peak : 0.0);
        posedirs[(i * 3 + 0) * P + col] = d.x;
        posedirs[(i * 3 + 1) * P + col] = d.y;
        posedirs[(i * 3 + 2) * P + col] = d.z;
      }
    }

  // ---- eyelids: the upper lid around each socket moves down (and a little forward) ----
  std::vector<double> l_eyelid(V * 3, 0.0), r_eyelid(V * 3, 0.0);
  for (int64_t i = 0; i < H; ++i) {
    const V3 p = mesh.v[i];
    if (cos_azimuth(p) < 0.5) continue;
    for (int side = 0; side < 2; ++side) {
      const double dx = p.x - (side == 0 ? kEyeX : -kEyeX), dy = p.y - kEyeY, rr = 0.019;
      const double q = (dx * dx + dy * dy) / (rr * rr);
      if (q >= 1.0) continue;
      const double w = (1.0 - q) * (1.0 - q) * smoothstep(kEyeY - 0.008, kEyeY + 0.002, p.y);
      auto& out = side == 0 ? l_eyelid : r_eyelid;
      out[i * 3 + 1] = -0.009 * w;
      out[i * 3 + 2] = 0.0015 * w;
    }
  }

  // ---- landmarks: 51 static by frontal rays, 17 contour points per yaw bin along the silhouette ----
  std::vector<int64_t> head_candidates(head_faces);
  for (int64_t i = 0; i < head_faces; ++i) head_candidates[i] = i;
  std::vector<int64_t> static_faces;
  std::vector<double> static_bary;
  for (const auto& xy : kStaticLandmarks) {
    const Hit h = cast(mesh, head_candidates, {xy[0], xy[1], 1.0}, {0.0, 0.0, -1.0});
    static_faces.push_back(h.face);
    static_bary.insert(static_bary.end(), h.bary.begin(), h.bary.end());
  }
  std::vector<int64_t> dyn_faces(kYawBins * kContour);
  std::vector<double> dyn_bary(kYawBins * kContour * 3);
  constexpr int kSamples = 720;
  for (int64_t li = 0; li < kContour; ++li) {
    const double s = static_cast<double>(li) / (kContour - 1);
    const double phi_rest = (2.0 * s - 1.0) * (80.0 * kPi / 180.0);  // landmark 0 on the subject's right (-x)
    const double y = 0.012 - 0.097 * std::sin(kPi * s);
    std::vector<int64_t> band;  // head faces spanning this height: the horizontal rays can only hit those
    for (int64_t fi = 0; fi < head_faces; ++fi) {
      const auto& f = mesh.f[fi];
      const double lo = std::min({mesh.v[f[0]].y, mesh.v[f[1]].y, mesh.v[f[2]].y});
      const double hi = std::max({mesh.v[f[0]].y, mesh.v[f[1]].y, mesh.v[f[2]].y});
      if (lo <= y + 1e-9 && hi >= y - 1e-9) band.push_back(fi);
    }
    const V3 origin{0.0, y, 0.0};
    const auto ray = [&](double phi) { return cast(mesh, band, origin, {std::sin(phi), 0.0, std::cos(phi)}); };
    std::vector<V3> ring(kSamples);
    std::vector<double> ring_phi(kSamples);
    for (int k = 0; k < kSamples; ++k) {
      ring_phi[k] = -kPi + 2.0 * kPi * k / kSamples;
      ring[k] = ray(ring_phi[k]).point;
    }
    for (int64_t bin = 0; bin < kYawBins; ++bin) {
      // Bin -> yaw of R_root R_neck (the inverse of the official bin formula), radians.
      const double yaw =
          (bin <= kYawHalf ? -static_cast<double>(bin) : static_cast<double>(bin - kYawHalf)) * kPi / 180.0;
      // The silhouette on each side: extreme image x of the ring turned by the yaw (x' = cos x + sin z).
      int kmax = 0, kmin = 0;
      for (int k = 0; k < kSamples; ++k) {
        const double xr = std::cos(yaw) * ring[k].x + std::sin(yaw) * ring[k].z;
        if (xr > std::cos(yaw) * ring[kmax].x + std::sin(yaw) * ring[kmax].z) kmax = k;
        if (xr < std::cos(yaw) * ring[kmin].x + std::sin(yaw) * ring[kmin].z) kmin = k;
      }
      double phi = phi_rest;  // a landmark turned behind the silhouette slides onto it
      if (phi_rest > 0.0) phi = std::min(phi_rest, ring_phi[kmax]);
      if (phi_rest < 0.0) phi = std::max(phi_rest, ring_phi[kmin]);
      const Hit h = ray(phi);
      dyn_faces[bin * kContour + li] = h.face;
      std::copy(h.bary.begin(), h.bary.end(), dyn_bary.begin() + (bin * kContour + li) * 3);
    }
  }

  // ---- region masks and the mirror index ----
  std::map<std::string, std::vector<int64_t>> masks;
  for (int64_t i = 0; i < H; ++i) {
    const V3 p = mesh.v[i];
    const double cphi = cos_azimuth(p), ex = (p.x - kEyeX), exr = (p.x + kEyeX), ey = p.y - kEyeY;
    const bool front = cphi > 0.3 && p.z > 0.0;
    const bool face = front && (p.x / 0.07) * (p.x / 0.07) + ((p.y + 0.015) / 0.085) * ((p.y + 0.015) / 0.085) < 1.0;
    const bool left_eye_region = front && ex * ex + ey * ey < 0.022 * 0.022;
    const bool right_eye_region = front && exr * exr + ey * ey < 0.022 * 0.022;
    const bool ear = std::abs(cphi) < 0.3 && std::abs(p.y) < 0.03;
    if (face) masks["face"].push_back(i);
    if (left_eye_region) masks["left_eye_region"].push_back(i);
    if (right_eye_region) masks["right_eye_region"].push_back(i);
    if (left_eye_region || right_eye_region) masks["eye_region"].push_back(i);
    if (front && std::abs(p.x) < 0.02 && p.y > -0.028 && p.y < 0.03) masks["nose"].push_back(i);
    if (front && std::abs(p.x) < 0.028 && p.y > -0.06 && p.y < -0.034) masks["lips"].push_back(i);
    if (front && std::abs(p.x) < 0.05 && p.y > 0.045 && p.y < 0.085) masks["forehead"].push_back(i);
    if (ear && p.x > 0.0) masks["left_ear"].push_back(i);
    if (ear && p.x < 0.0) masks["right_ear"].push_back(i);
    if (p.y < -0.10) masks["neck"].push_back(i);
    if (!face && !ear && p.y > -0.02 && (cphi < 0.3 || p.y > 0.07)) masks["scalp"].push_back(i);
    if (ring_of[i] == R) masks["boundary"].push_back(i);
  }
  for (int64_t i = 0; i < NE; ++i) {
    masks["left_eyeball"].push_back(left0 + i);
    masks["right_eyeball"].push_back(right0 + i);
  }
  std::vector<int64_t> mirror(V);
  mirror[0] = 0;
  for (int64_t r = 1; r <= R; ++r)
    for (int64_t c = 0; c < C; ++c) mirror[hv(r, c)] = hv(r, C - c);
  for (int64_t i = 0; i < NE; ++i) {
    mirror[left0 + i] = right0 + i;
    mirror[right0 + i] = left0 + i;
  }

  // ---- assemble ----
  FlameModel m;
  m.source = "<synthetic seed=" + std::to_string(options.seed()) + " vertices=" + std::to_string(V) + ">";
  std::vector<double> flat;
  for (const V3& p : mesh.v) flat.insert(flat.end(), {p.x, p.y, p.z});
  m.v_template = to_tensor(flat, {V, 3});
  std::vector<int64_t> fi;
  for (const auto& f : mesh.f) fi.insert(fi.end(), f.begin(), f.end());
  const int64_t F = static_cast<int64_t>(mesh.f.size());
  m.faces = to_index_tensor(fi, {F, 3});
  m.shapedirs = to_tensor(shapedirs, {V, 3, K});
  m.n_shape_basis = S;
  m.posedirs = to_tensor(posedirs, {V, 3, P});
  m.J_regressor = to_tensor(jreg, {5, V});
  m.kintree_table = to_index_tensor({-1, 0, 1, 1, 1, 0, 1, 2, 3, 4}, {2, 5});
  m.lbs_weights = to_tensor(weights, {V, 5});
  std::vector<double> uvflat;
  for (const auto& uv : vertex_uv) uvflat.insert(uvflat.end(), uv.begin(), uv.end());
  m.vertex_uv = to_tensor(uvflat, {V, 2});
  std::vector<double> vtflat;
  for (const auto& uv : vt) vtflat.insert(vtflat.end(), uv.begin(), uv.end());
  m.uv_coords = to_tensor(vtflat, {static_cast<int64_t>(vt.size()), 2});
  std::vector<int64_t> ftflat;
  for (const auto& t : ft) ftflat.insert(ftflat.end(), t.begin(), t.end());
  m.uv_faces = to_index_tensor(ftflat, {F, 3});
  m.static_lmk_faces_idx = to_index_tensor(static_faces, {static_cast<int64_t>(static_faces.size())});
  m.static_lmk_bary_coords = to_tensor(static_bary, {static_cast<int64_t>(static_faces.size()), 3});
  m.dynamic_lmk_faces_idx = to_index_tensor(dyn_faces, {kYawBins, kContour});
  m.dynamic_lmk_bary_coords = to_tensor(dyn_bary, {kYawBins, kContour, 3});
  m.l_eyelid = to_tensor(l_eyelid, {V, 3});
  m.r_eyelid = to_tensor(r_eyelid, {V, 3});
  m.mirror_index = to_index_tensor(mirror, {V});
  for (const auto& [name, idx] : masks) m.masks[name] = to_index_tensor(idx, {static_cast<int64_t>(idx.size())});
  m.validate();
  return m;
}

}  // namespace pixel3dmm::synth

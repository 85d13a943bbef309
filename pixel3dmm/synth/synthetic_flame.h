#pragma once
/// A synthetic model with FLAME's exact array layout, so that every test, benchmark and demo runs without the
/// licence-gated FLAME files, through the same code path as the real model.
///
/// What it is: a deterministic (seeded) head: a deformed ellipsoid open at the neck with a face (nose, eye
/// sockets, brows, cheekbones, lips and mouth slit, chin, ears), two separate eyeball spheres (FLAME keeps them as
/// vertex ranges after the head, left first), a UV parametrisation (per-vertex and OBJ-style vt/ft with seam
/// duplicates), FLAME's 5 joints and kinematic tree (root, neck, jaw, left eye, right eye) with smooth skinning
/// weights, smooth identity and expression bases with decaying amplitudes (metres per unit coefficient), small
/// pose correctives, eyelid blendshapes, a 68-landmark iBUG embedding (51 static + 79 x 17 yaw-dependent contour
/// table computed from the mesh silhouette), region masks and a mirror index. With the default 5023 vertices the
/// split is FLAME's: 3931 head vertices, then 546 + 546 eyeball vertices.

#include <torch/arg.h>

#include <cstdint>

#include "pixel3dmm/flame/flame_model.h"

namespace pixel3dmm::synth {

struct SyntheticFlameOptions {
  /// Total vertex count (head + two eyeballs); must be realisable by synthetic_layout (any value >= 100 is,
  /// except rare ones: the error suggests neighbours).
  TORCH_ARG(int64_t, vertices) = 5023;
  /// Identity components (FLAME: 300).
  TORCH_ARG(int64_t, n_shape) = 300;
  /// Expression components (FLAME: 100).
  TORCH_ARG(int64_t, n_expr) = 100;
  /// Seed of the random bases; the geometry, joints, UVs and landmarks do not depend on it.
  TORCH_ARG(uint64_t, seed) = 0;
};

/// The mesh resolution chosen for a vertex count: a head grid (a top pole + rings x columns, open at the neck)
/// and two UV-sphere eyeballs (2 poles + rings x columns).
struct SyntheticLayout {
  int64_t head_rings = 0, head_columns = 0, eye_rings = 0, eye_columns = 0;
  int64_t head_vertices() const { return 1 + head_rings * head_columns; }
  int64_t eye_vertices() const { return 2 + eye_rings * eye_columns; }
  int64_t n_vertices() const { return head_vertices() + 2 * eye_vertices(); }
  int64_t n_faces() const { return head_columns * (2 * head_rings - 1) + 4 * eye_rings * eye_columns; }
};

/// The layout with exactly `n_vertices` vertices closest to FLAME's proportions (5023 -> 30 x 131 head,
/// 17 x 32 eyeballs: 9905 faces). Throws ValueError when no layout fits.
SyntheticLayout synthetic_layout(int64_t n_vertices);

/// Builds the model (float64 arrays, validated). ~0.2 s for the default size.
flame::FlameModel synthetic_flame(const SyntheticFlameOptions& options = {});

}  // namespace pixel3dmm::synth

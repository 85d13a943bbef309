#pragma once
/// What a fit leaves on disk for one image: meshes, parameters, pictures and the loss log. Every file is written
/// atomically; names follow the official tracker where it has one (docs/fitting.md lists them).

#include <string>

#include "pixel3dmm/fit/fitter.h"

namespace pixel3dmm::fit {

struct FitOutputOptions {
  bool meshes = true;    ///< mesh.ply / mesh.obj (FLAME space), mesh_world.ply, canonical.ply
  bool params = true;    ///< params.json, params.safetensors
  bool pictures = true;  ///< overlay.png, maps.png, loss.png
  bool log = true;       ///< loss.csv
};

/// Writes image `index` of a fit into `folder` (created if missing):
///   mesh.ply, mesh.obj   posed FLAME-space mesh without the head pose (the official mesh/<frame>.ply), OBJ with UVs
///   mesh_world.ply       the same with the head pose applied (what the camera sees)
///   canonical.ply        template + identity, neutral (the official canonical.ply)
///   params.json          parameters under the official names (flame.exp, flame.shape, ..., camera.fl, camera.pp)
///   params.safetensors   the same tensors
///   overlay.png          [input | 30% input + 70% rendered normal shading | rendered normals]
///   maps.png             [predicted UV | rendered UV] over [predicted normals | rendered normals]
///   loss.png, loss.csv   the loss per step of both stages (loss.png: the total, and the full stage's terms normalised)
void write_fit_outputs(const std::string& folder, const Fitter& fitter, const FitResult& result,
                       const FitTarget& target, int64_t index = 0, const FitOutputOptions& options = {});

/// The pictures alone, as 1 x 3 x H x W tensors in [0, 1] (what overlay.png and maps.png hold).
torch::Tensor fit_overlay_image(const Fitter& fitter, const FitResult& result, const FitTarget& target,
                                int64_t index = 0);
torch::Tensor fit_maps_image(const Fitter& fitter, const FitResult& result, const FitTarget& target, int64_t index = 0);

/// The loss curves as 1 x 3 x H x W (H = 2 x height with a full stage): log10 of the total per step, stages in
/// different colours; below it the full stage's terms that reach 1% of the total (at most 8), each divided by its
/// value at the stage's first step.
torch::Tensor loss_curve_image(const std::vector<FitLogEntry>& log, int64_t width = 640, int64_t height = 360);

}  // namespace pixel3dmm::fit

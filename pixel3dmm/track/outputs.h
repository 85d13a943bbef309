#pragma once
/// What a tracking run leaves on disk (docs/tracking.md lists it). Every file is written atomically.

#include <string>
#include <vector>

#include "pixel3dmm/track/tracker.h"

namespace pixel3dmm::track {

struct TrackOutputOptions {
  bool frames = true;    ///< frames/NNNNN/: meshes and parameters of each frame
  bool video = true;     ///< overlay.mp4 (overlay/NNNNN.png when OpenCV has no MP4 writer)
  bool plot = true;      ///< loss.png
  double fps = 25.0;     ///< of overlay.mp4
};

/// The tracked sequence as a fit result (B = N frames), for the fit module's writers and pictures.
fit::FitResult as_fit_result(const Tracker& tracker, const TrackResult& result);

/// Writes into `folder` (created if missing):
///   sequence.safetensors, sequence.json  N-row parameters under the official names (flame.exp: N x n_expr, ...,
///                                        flame.shape 1 x n_shape, camera.fl, camera.pp) and the per-frame
///                                        online steps / losses
///   frames/NNNNN/                        mesh.ply, mesh.obj (FLAME space), mesh_world.ply, canonical.ply,
///                                        params.json, params.safetensors (fit/outputs.h layout)
///   overlay.mp4                          per frame [input | 30% input + 70% normal shading | rendered normals]
///                                        (overlay/NNNNN.png instead when no MP4 writer opens)
///   loss.png                             the global stage's loss per step, and each frame's final online loss
/// Returns the path of the overlay video or folder ("" when not written).
std::string write_track_outputs(const std::string& folder, const Tracker& tracker, const TrackResult& result,
                                const std::vector<fit::FitTarget>& frames, const TrackOutputOptions& options = {});

}  // namespace pixel3dmm::track

#pragma once
/// The demo networks: a small UV network and a small normal network (a 4-block ViT at 128 x 128, about 2 M
/// parameters each) trained by `training/recipes/demo-{uv,normals}.json` on synthetic photos of the synthetic
/// FLAME-layout model, embedded in the library (training/demo-model/). They make the whole pipeline runnable with
/// no download: `pixel3dmm demo` predicts with them. They know nothing of real faces, nor of the real FLAME's UV
/// layout: for photos, bring the official networks (docs/network.md).

#include "pixel3dmm/nn/network.h"
#include "pixel3dmm/predict/predictor.h"

namespace pixel3dmm::predict {

/// A fresh copy of the embedded demo network of `type` (eval mode).
nn::Pixel3DMMNet demo_network(nn::PredictionType type);

/// Both demo networks in a Predictor. Mirror averaging is off: the official un-flip rule assumes the real FLAME
/// UV layout, which the synthetic model's layout does not share.
Predictor demo_predictor();

}  // namespace pixel3dmm::predict

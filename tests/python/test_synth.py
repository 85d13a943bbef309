"""pixel3dmm.synth: one module for synthetic ground truth, the same functions as under their older modules."""
import torch

import pixel3dmm
from pixel3dmm import fit, flame, synth, track, train


def test_synth_names_are_the_functions_of_the_older_modules():
    assert pixel3dmm.synth is synth
    assert synth.synthetic_flame is flame.synthetic_flame
    assert synth.random_params is fit.random_params
    assert synth.synthetic_target is fit.synthetic_target
    assert synth.render_synthetic_photo is train.render_synthetic_photo
    assert synth.synthetic_albedo is train.synthetic_albedo
    assert synth.write_synthetic_dataset is train.write_synthetic_dataset
    assert synth.synthetic_video is track.synthetic_video
    assert sorted(synth.__all__) == sorted(n for n in dir(synth) if not n.startswith("_"))


def test_synth_ground_truth_is_deterministic_in_its_seed():
    model = synth.synthetic_flame(vertices=600, n_shape=6, n_expr=4)
    fitter = fit.Fitter(flame.Flame(model), {"image_size": 32, "n_shape": 6, "n_expr": 4})
    a = synth.synthetic_target(fitter, synth.random_params(1, 6, 4, seed=5), size=32, seed=1)
    b = synth.synthetic_target(fitter, synth.random_params(1, 6, 4, seed=5), size=32, seed=1)
    c = synth.synthetic_target(fitter, synth.random_params(1, 6, 4, seed=6), size=32, seed=1)
    assert torch.equal(a["vertices"], b["vertices"])
    assert not torch.equal(a["vertices"], c["vertices"])

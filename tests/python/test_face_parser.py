"""The official face parsing step in C++ (pixel3dmm.preprocess.FaceParser) against our Python reference
(face_parser_reference.py): the spec's alignment test vector, matrices and grids on random keypoints, and the whole
path (warp, TorchScript parser, inverse warp, labels) on a small stand-in parser scripted and saved here with the
installed torch; plus the loader's errors (not TorchScript, wrong output, an archive from a newer PyTorch)."""
import zipfile

import pytest
import torch

import face_parser_reference as ref
from pixel3dmm import preprocess as pp

SPEC_POINTS = [[200, 230], [310, 228], [255, 290], [215, 350], [300, 348]]


def random_faces(n, seed, scale=(20, 170), centre=(100, 400)):
    """n plausible five-point sets (eyes, nose, mouth corners), rotated, scaled and jittered."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([[-0.35, -0.3], [0.35, -0.3], [0.0, 0.05], [-0.28, 0.4], [0.28, 0.4]])
    out = []
    for _ in range(n):
        ang = (torch.rand((), generator=g) - 0.5).item()
        rot = torch.tensor([[torch.cos(torch.tensor(ang)), -torch.sin(torch.tensor(ang))],
                            [torch.sin(torch.tensor(ang)), torch.cos(torch.tensor(ang))]])
        s = scale[0] + (scale[1] - scale[0]) * torch.rand((), generator=g)
        c = centre[0] + (centre[1] - centre[0]) * torch.rand(2, generator=g)
        out.append(base @ rot.T * s + c + torch.randn(5, 2, generator=g) * 2)
    return torch.stack(out).float()


class StandIn(torch.nn.Module):
    """The celebm parser's interface: n x 3 x S x S in [0, 1] -> (n x 19 x S x S logits, features)."""

    def __init__(self, classes=19):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, classes, 3, padding=1)

    def forward(self, x):
        y = self.conv(x * 2 - 1) * 4
        return y, y.mean()


class NotATuple(torch.nn.Module):
    def forward(self, x):
        return x


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    torch.manual_seed(0)
    net = StandIn().eval()
    path = str(tmp_path_factory.mktemp("parser") / "stand_in_jit.pt")
    torch.jit.save(torch.jit.script(net), path)
    return net, path


def test_alignment_matches_the_spec_vector_and_the_reference():
    m = pp.face_align_matrix_celebm(torch.tensor(SPEC_POINTS, dtype=torch.float32))
    assert m.shape == (1, 3, 3) and m.dtype == torch.float32
    expected = torch.tensor([[0.5428366, -0.01062071, 86.93444], [0.01062071, 0.5428366, 89.38870]])
    # The spec prints 7 significant digits: rotation part to 1e-6 absolute, translation to its printed digits.
    assert (m[0, :2, :2] - expected[:, :2]).abs().max() <= 1e-6
    assert (m[0, :2, 2] - expected[:, 2]).abs().max() <= 1e-4
    assert torch.equal(m, ref.align_matrix(SPEC_POINTS))
    faces = random_faces(64, seed=1)
    m = pp.face_align_matrix_celebm(faces)
    r = ref.align_matrix(faces.numpy())
    assert (m - r).abs().max() <= 1e-6 * r.abs().max()
    # small faces reach the 1.25 + 1 factor, large ones 1.25: both sides of the clamp are covered
    side = 448 / (m[:, 0, 0] ** 2 + m[:, 0, 1] ** 2).sqrt()
    assert side.min() < 300 < side.max()


def test_grids_match_the_reference():
    faces = random_faces(3, seed=2)
    m = ref.align_matrix(faces.numpy())
    g = pp.aligned_grid(m, 300, 420, 64)
    assert g.shape == (3, 64, 64, 2)
    assert (g - ref.aligned_grid(m, 300, 420, 64)).abs().max() <= 1e-6
    i = pp.image_grid(m, 300, 420, 64)
    assert i.shape == (3, 300, 420, 2)
    assert (i - ref.image_grid(m, 300, 420, 64)).abs().max() <= 1e-6


def test_labels_from_logits_official_rule():
    logits = torch.zeros(1, 19, 2, 3)
    logits[0, 4, 0, 0] = 2.0
    logits[0, 7, 0, 1] = 1.0
    logits[0, 9, 0, 1] = 1.0  # a tie: the first maximum wins
    logits[0, 0, 1, :] = -1.0  # not all zero, all other channels equal: label 1
    labels = pp.labels_from_logits(logits)
    assert labels.dtype == torch.uint8
    assert labels[0].tolist() == [[4, 7, 20], [1, 1, 1]]


def test_stand_in_parser_gives_the_reference_label_map(stand_in):
    net, path = stand_in
    g = torch.Generator().manual_seed(3)
    image = (torch.rand(1, 3, 300, 320, generator=g) * 255).round().to(torch.uint8)
    # faces small enough that the aligned square (about 4.2 x 2.25 x face scale) leaves a border outside it
    points = random_faces(2, seed=4, scale=(20, 25), centre=(130, 170))
    parser = pp.FaceParser(path, size=64)
    logits = parser.logits(image, points)
    labels = parser.labels(image, points)
    with torch.no_grad():
        ref_logits, ref_labels = ref.parse(net, image, points, size=64)
    assert logits.shape == (2, 19, 300, 320) and labels.shape == (2, 300, 320)
    assert (logits - ref_logits).abs().max() <= 1e-5
    # Near-ties aside (none expected with the same LibTorch kernels), the label maps are identical.
    assert torch.equal(labels, ref_labels)
    assert (labels == 20).sum() > 1000 and (labels < 19).sum() > 1000
    # A float image in [0, 1] made from the same bytes gives the same result.
    assert torch.equal(parser.labels(image.float() / 255.0, points), labels)


def test_loader_errors(stand_in, tmp_path):
    _, path = stand_in
    with pytest.raises(FileNotFoundError, match="missing_jit.pt"):
        pp.FaceParser(str(tmp_path / "missing_jit.pt"))
    bad = tmp_path / "not_torchscript.pt"
    bad.write_bytes(b"definitely not a zip archive")
    with pytest.raises(ValueError, match="not_torchscript.pt: not a TorchScript archive"):
        pp.FaceParser(str(bad))
    # A module of the wrong interface: one error naming the file, at the first call.
    wrong = str(tmp_path / "wrong_jit.pt")
    torch.jit.save(torch.jit.script(NotATuple()), wrong)
    with pytest.raises(ValueError, match="wrong_jit.pt: the face parser must return a tuple of two"):
        pp.FaceParser(wrong, size=32).labels(torch.zeros(1, 3, 40, 40, dtype=torch.uint8), random_faces(1, 5, (10, 12), (18, 22)))
    with pytest.raises(ValueError, match=r"expected float 1 x 12 x 32 x 32, found Float \[1, 19, 32, 32\]"):
        pp.FaceParser(path, size=32, classes=12).labels(torch.zeros(1, 3, 40, 40, dtype=torch.uint8),
                                                         random_faces(1, 5, (10, 12), (18, 22)))
    # An archive from a newer PyTorch: the same zip with its version record raised past what LibTorch reads.
    assert pp.archive_format_version(path) >= 1
    newer = str(tmp_path / "newer_jit.pt")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(newer, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("/version") and info.filename.count("/") == 1:
                data = b"99\n"
            dst.writestr(info.filename, data)
    assert pp.archive_format_version(newer) == 99
    with pytest.raises(ValueError, match=r"newer_jit.pt: TorchScript archive of file format version 99, written by a "
                                         r"newer PyTorch; this LibTorch \(1\.13.*\) reads versions up to 10"):
        pp.FaceParser(newer)

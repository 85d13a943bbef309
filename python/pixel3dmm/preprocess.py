"""From a photo to what the fitter consumes: a 512 x 512 face crop in the official framing, 68 landmarks, the two
pupils and the uv / normal / foreground / valid-background masks (dlib detection; see docs/preprocessing.md).

    r = pixel3dmm.preprocess.preprocess_file("photo.jpg")           # largest face; ValueError if none
    r.crop, r.landmarks, r.iris, r.uv_mask, r.affine                  # 1x3x512x512, 1x68x2, 1x2x2, 1x512x512, 2x3
    faces = pixel3dmm.preprocess.preprocess_file("group.jpg", all_faces=True)
    pixel3dmm.preprocess.write_preprocessed_png("check.png", r)       # look at it
    p = pixel3dmm.preprocess.Preprocessor({"crop_size": 512})        # load the detector once for many photos
    results = [p.file(path) for path in paths]
"""
from ._C import preprocess as _pp

PreprocessOptions = _pp.PreprocessOptions
Preprocessed = _pp.Preprocessed
Preprocessor = _pp.Preprocessor
preprocess_image = _pp.preprocess_image
preprocess_file = _pp.preprocess_file
detect_faces = _pp.detect_faces
masks_from_segmentation = _pp.masks_from_segmentation
masks_from_landmarks = _pp.masks_from_landmarks
read_segmentation = _pp.read_segmentation
labels_in_crop = _pp.labels_in_crop
FaceParser = _pp.FaceParser
RetinaFaceDetector = _pp.RetinaFaceDetector  # the parser's five keypoints, as facer finds them
face_align_matrix_celebm = _pp.face_align_matrix_celebm
aligned_grid = _pp.aligned_grid
image_grid = _pp.image_grid
labels_from_logits = _pp.labels_from_logits
archive_format_version = _pp.archive_format_version
locate_pupils = _pp.locate_pupils
apply_affine = _pp.apply_affine
invert_affine = _pp.invert_affine
draw_preprocessed = _pp.draw_preprocessed
write_preprocessed_png = _pp.write_preprocessed_png
default_landmark_model_path = _pp.default_landmark_model_path
# The official detector and crop rule (FaceBoxesV2 weights converted by pixel3dmm.convert_preprocessing)
FaceBoxesDetector = _pp.FaceBoxesDetector
official_crop = _pp.official_crop
official_crop_image = _pp.official_crop_image
official_crop_region = _pp.official_crop_region
pipnet_face_box = _pp.pipnet_face_box
# The official 98 landmarks (PIPNet weights + mean face converted by pixel3dmm.convert_preprocessing pipnet)
PipNetDetector = _pp.PipNetDetector
wflw_to_ibug68 = _pp.wflw_to_ibug68
wflw_landmarks_and_pupils = _pp.wflw_landmarks_and_pupils

__all__ = [
    "PreprocessOptions",
    "Preprocessed",
    "Preprocessor",
    "preprocess_image",
    "preprocess_file",
    "detect_faces",
    "masks_from_segmentation",
    "masks_from_landmarks",
    "read_segmentation",
    "labels_in_crop",
    "FaceParser",
    "RetinaFaceDetector",
    "face_align_matrix_celebm",
    "aligned_grid",
    "image_grid",
    "labels_from_logits",
    "archive_format_version",
    "locate_pupils",
    "apply_affine",
    "invert_affine",
    "draw_preprocessed",
    "write_preprocessed_png",
    "default_landmark_model_path",
    "FaceBoxesDetector",
    "official_crop",
    "official_crop_image",
    "official_crop_region",
    "pipnet_face_box",
    "PipNetDetector",
    "wflw_to_ibug68",
    "wflw_landmarks_and_pupils",
]

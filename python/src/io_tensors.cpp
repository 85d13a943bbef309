// Bindings of pixel3dmm/io/safetensors.h and pixel3dmm/io/npy.h. File I/O runs without the GIL; tensors are
// converted to and from Python with it held.
#include "bindings.h"
#include "pixel3dmm/io/npy.h"
#include "pixel3dmm/io/safetensors.h"

namespace pixel3dmm::python {

namespace {
using io::Metadata;
using io::TensorMap;

template <typename Fn>
auto without_gil(Fn&& fn) {
  py::gil_scoped_release release;
  return fn();
}
}  // namespace

void bind_io_tensors(py::module_& m) {
  m.def(
      "read_safetensors",
      [](const std::string& path) {
        io::SafetensorsFile f = without_gil([&] { return io::read_safetensors(path); });
        return py::make_tuple(f.tensors, f.metadata);
      },
      py::arg("path"),
      "Reads a safetensors file -> (tensors: dict[str, Tensor], metadata: dict[str, str]). Tensors are CPU, "
      "contiguous, of dtype float64/32/16, bfloat16, int64/32/16/8, uint8 or bool, shaped as stored. Raises "
      "FileNotFoundError, or ValueError naming the file, the tensor and expected vs found for a corrupt file.");
  m.def(
      "read_safetensors_metadata",
      [](const std::string& path) { return without_gil([&] { return io::read_safetensors_metadata(path); }); },
      py::arg("path"), "Reads only the header of a safetensors file (validated) -> its __metadata__ dict[str, str].");
  m.def(
      "parse_safetensors",
      [](py::bytes data, const std::string& name) {
        const std::string_view bytes = data;
        io::SafetensorsFile f = without_gil([&] { return io::parse_safetensors(bytes, name); });
        return py::make_tuple(f.tensors, f.metadata);
      },
      py::arg("data"), py::arg("name") = "<memory>",
      "read_safetensors on bytes in memory; `name` is used in error messages.");
  m.def(
      "write_safetensors",
      [](const std::string& path, const TensorMap& tensors, const std::optional<Metadata>& metadata) {
        without_gil([&] { io::write_safetensors(path, tensors, metadata.value_or(Metadata{})); });
      },
      py::arg("path"), py::arg("tensors"), py::arg("metadata") = py::none(),
      "Writes dict[str, Tensor] (any shape; dtypes as read_safetensors returns; any device, strided or sparse) and "
      "an optional dict[str, str] of metadata to a safetensors file, atomically.");
  m.def(
      "serialize_safetensors",
      [](const TensorMap& tensors, const std::optional<Metadata>& metadata) {
        const std::string bytes =
            without_gil([&] { return io::serialize_safetensors(tensors, metadata.value_or(Metadata{})); });
        return py::bytes(bytes);
      },
      py::arg("tensors"), py::arg("metadata") = py::none(), "The bytes write_safetensors would write.");

  m.def(
      "read_npy", [](const std::string& path) { return without_gil([&] { return io::read_npy(path); }); },
      py::arg("path"),
      "Reads a .npy file -> Tensor of its shape (C order whatever the file's order). dtypes: <f8 <f4 <f2 <i8 <i4 "
      "<i2 |i1 |u1 |b1 (little or big endian) map to float64/32/16, int64/32/16/8, uint8, bool; <u2 and <u4 widen to "
      "int32 and int64. Object arrays, structured dtypes and uint64 raise ValueError naming the file and the descr.");
  m.def(
      "parse_npy",
      [](py::bytes data, const std::string& name) {
        const std::string_view bytes = data;
        return without_gil([&] { return io::parse_npy(bytes, name); });
      },
      py::arg("data"), py::arg("name") = "<memory>", "read_npy on bytes in memory; `name` is used in error messages.");
  m.def(
      "write_npy",
      [](const std::string& path, const torch::Tensor& array) { without_gil([&] { io::write_npy(path, array); }); },
      py::arg("path"), py::arg("array"),
      "Writes a Tensor (float64/32/16, int64/32/16/8, uint8 or bool; any shape) as a version 1.0 .npy, atomically.");
  m.def(
      "serialize_npy",
      [](const torch::Tensor& array) { return py::bytes(without_gil([&] { return io::serialize_npy(array); })); },
      py::arg("array"), "The bytes write_npy would write.");
  m.def(
      "read_npz", [](const std::string& path) { return without_gil([&] { return io::read_npz(path); }); },
      py::arg("path"),
      "Reads every array of an .npz archive (as np.savez or np.savez_compressed write) -> dict[str, Tensor], keys "
      "without '.npy'. Each member is read as read_npy does and its CRC-32 is checked.");
  m.def(
      "parse_npz",
      [](py::bytes data, const std::string& name) {
        const std::string_view bytes = data;
        return without_gil([&] { return io::parse_npz(bytes, name); });
      },
      py::arg("data"), py::arg("name") = "<memory>", "read_npz on bytes in memory; `name` is used in error messages.");
  m.def(
      "write_npz",
      [](const std::string& path, const TensorMap& arrays, bool compress) {
        without_gil([&] { io::write_npz(path, arrays, compress); });
      },
      py::arg("path"), py::arg("arrays"), py::arg("compress") = true,
      "Writes dict[str, Tensor] as an .npz archive, deflated when `compress` (as np.savez_compressed) else stored "
      "(as np.savez), atomically. dtypes as write_npy.");
}

}  // namespace pixel3dmm::python

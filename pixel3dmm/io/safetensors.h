#pragma once
/// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the raw little-endian data.

#include <torch/types.h>

#include <map>
#include <string>
#include <string_view>

namespace pixel3dmm::io {

/// Named tensors, ordered by name (the order safetensors writers use).
using TensorMap = std::map<std::string, torch::Tensor>;
/// The free-form `__metadata__` string map.
using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  TensorMap tensors;
  Metadata metadata;
};

/// Reads every tensor (CPU, contiguous, owning its memory). Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8
/// BOOL. Validates the header length, the JSON, every dtype and shape, that each byte range equals
/// numel x element size, lies inside the data section and overlaps no other. Errors (FormatError) name the file
/// and the tensor key; missing files raise FileNotFound.
SafetensorsFile read_safetensors(const std::string& path);

/// Only the `__metadata__` map, reading just the header (which is validated as fully as by read_safetensors,
/// except that no tensor data is read).
Metadata read_safetensors_metadata(const std::string& path);

/// The same as read_safetensors from bytes in memory; `name` is used in error messages.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name = "<memory>");

/// Writes tensors (any device, strided or sparse; written as dense little-endian CPU data) and metadata,
/// atomically. The JSON header has its keys sorted and is padded with spaces so the data starts 8-byte aligned;
/// tensors are laid out by decreasing element size, so every tensor is aligned to its element size. Throws
/// ValueError for a dtype safetensors lacks (complex, quantized), the reserved key "__metadata__", or names that
/// are not valid UTF-8.
void write_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata = {});

/// The bytes write_safetensors would write.
std::string serialize_safetensors(const TensorMap& tensors, const Metadata& metadata = {});

}  // namespace pixel3dmm::io

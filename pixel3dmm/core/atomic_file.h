#pragma once
/// Atomic output: every file pixel3dmm writes goes to a temporary file beside its destination and is renamed
/// into place only once complete, so a crash or an error never leaves a half-written output.

#include <functional>
#include <string>
#include <string_view>

namespace pixel3dmm {

/// Calls `write(tmp_path)`, where `tmp_path` is a fresh file name in the destination's folder that keeps the
/// destination's extension (so extension-driven writers such as cv::imwrite work), then renames it onto `path`.
/// If `write` throws, or leaves no file, the temporary file is removed and `path` is left untouched.
/// Throws pixel3dmm::Error when the folder does not exist or is not writable (naming `path`).
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

/// Writes a whole folder or nothing: `write(tmp)` fills a hidden sibling folder (".<name>.partial"), which then
/// replaces `folder` (removing an older one). If `write` throws, the partial folder is removed, no folder is left
/// behind and an older `folder` stays untouched.
void write_folder_atomically(const std::string& folder, const std::function<void(const std::string& tmp)>& write);

/// Writes `bytes` to `path` atomically (flushed and fsync'ed before the rename).
void write_file_atomically(const std::string& path, std::string_view bytes);

/// Reads a whole file into a string. Throws FileNotFound naming the path.
std::string read_file(const std::string& path);

}  // namespace pixel3dmm

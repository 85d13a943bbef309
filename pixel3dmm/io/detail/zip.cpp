#include "pixel3dmm/io/detail/zip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <set>

#include "pixel3dmm/core/error.h"

namespace pixel3dmm::io::detail {
namespace {

using pixel3dmm::detail::concat;

constexpr std::uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr std::uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr std::uint64_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kZip64EndSize = 56, kLocatorSize = 20;
constexpr std::uint64_t k32 = 0xffffffffu;  // a 32-bit field holding this means "see the ZIP64 record"
constexpr std::uint16_t kZip64ExtraId = 0x0001;
// Deflate codes a 258-byte match in at least 2 bits, so no stream expands more than 1032:1.
constexpr std::uint64_t kMaxDeflateRatio = 1032;
constexpr std::uint64_t kChunk = 1 << 20;

// Cursor over an in-memory record with bounds-checked little-endian reads.
struct Reader {
  std::string_view bytes;
  std::uint64_t pos = 0;
  bool has(std::uint64_t n) const { return pos <= bytes.size() && n <= bytes.size() - pos; }
  std::uint64_t le(int n) {
    const std::uint64_t v = load_le(bytes.data() + pos, n);
    pos += n;
    return v;
  }
};

// The 64-bit values a ZIP64 extra field (id 1) supplies, in APPNOTE's order, for the fields set to 0xffffffff.
void apply_zip64_extra(std::string_view extra, std::initializer_list<std::uint64_t*> fields, const std::string& where) {
  Reader r{extra};
  while (r.has(4)) {
    const auto id = r.le(2), len = r.le(2);
    PIXEL3DMM_CHECK_FORMAT(r.has(len), where, "extra field runs past its end (truncated header)");
    if (id != kZip64ExtraId) {
      r.pos += len;
      continue;
    }
    Reader z{extra.substr(r.pos, len)};
    for (std::uint64_t* f : fields) {
      if (*f != k32) continue;
      PIXEL3DMM_CHECK_FORMAT(z.has(8), where, "ZIP64 extra field too short, expected a 64-bit value");
      *f = z.le(8);
    }
    return;
  }
  for (std::uint64_t* f : fields)
    PIXEL3DMM_CHECK_FORMAT(*f != k32, where, "a size or offset is 0xffffffff but the ZIP64 extra field is missing");
}

struct DirectoryLocation {
  std::uint64_t entries, size, offset;
  std::uint64_t end;  // where the end records start: the directory must finish before
};

DirectoryLocation locate_directory(const ByteSource& zip) {
  const std::string& file = zip.name();
  PIXEL3DMM_CHECK_FORMAT(zip.size() >= kEndSize, file, "not a ZIP archive, expected at least ", kEndSize,
                         " bytes (the end of central directory record), found ", zip.size());
  // The end record sits in the last 22 + 65535 (longest comment) bytes; search backwards for its signature.
  const std::uint64_t tail_size = std::min<std::uint64_t>(zip.size(), kEndSize + 0xffff);
  const std::uint64_t tail_start = zip.size() - tail_size;
  const std::string tail = zip.read_string(tail_start, tail_size);
  std::uint64_t p = tail_size - kEndSize + 1;
  bool found = false;
  while (p-- > 0) {
    if (load_le(tail.data() + p, 4) == kEndSig && p + kEndSize + load_le(tail.data() + p + 20, 2) <= tail_size) {
      found = true;
      break;
    }
  }
  PIXEL3DMM_CHECK_FORMAT(found, file, "not a ZIP archive or truncated: no end of central directory record in the last ",
                         tail_size, " bytes");
  Reader r{std::string_view(tail).substr(p)};
  r.pos = 4;
  const auto disk = r.le(2), directory_disk = r.le(2);
  r.le(2);  // entries on this disk
  DirectoryLocation loc{r.le(2), r.le(4), r.le(4), tail_start + p};
  PIXEL3DMM_CHECK_FORMAT(disk == 0 && directory_disk == 0, file, "multi-part ZIP archives are not supported");

  // A ZIP64 locator right before the end record points at the ZIP64 end record with the 64-bit values.
  if (loc.end >= kLocatorSize) {
    const std::string locator = zip.read_string(loc.end - kLocatorSize, kLocatorSize);
    if (load_le(locator.data(), 4) == kZip64LocatorSig) {
      const std::uint64_t at = load_le(locator.data() + 8, 8);
      PIXEL3DMM_CHECK_FORMAT(at <= loc.end - kLocatorSize && kZip64EndSize <= loc.end - kLocatorSize - at, file,
                             "ZIP64 end of central directory record at ", at, " runs past its locator at ",
                             loc.end - kLocatorSize);
      const std::string rec = zip.read_string(at, kZip64EndSize);
      PIXEL3DMM_CHECK_FORMAT(load_le(rec.data(), 4) == kZip64EndSig, file,
                             "bad ZIP64 end of central directory signature at offset ", at);
      loc = {load_le(rec.data() + 32, 8), load_le(rec.data() + 40, 8), load_le(rec.data() + 48, 8), at};
    }
  }
  PIXEL3DMM_CHECK_FORMAT(loc.offset <= loc.end && loc.size <= loc.end - loc.offset, file, "central directory [",
                         loc.offset, ", ", loc.offset + loc.size, ") runs past its end record at ", loc.end,
                         " (truncated or corrupt archive)");
  PIXEL3DMM_CHECK_FORMAT(loc.entries <= loc.size / kCentralSize, file, "central directory of ", loc.size,
                         " bytes cannot hold the ", loc.entries, " entries it declares");
  return loc;
}

// Validates the member's local header and returns where its bytes start.
std::uint64_t locate_data(const ByteSource& zip, const ZipMember& m, std::uint64_t header_offset,
                          const std::string& where) {
  PIXEL3DMM_CHECK_FORMAT(header_offset <= zip.size() && kLocalSize <= zip.size() - header_offset, where,
                         "local header at offset ", header_offset, " runs past the end of the archive (", zip.size(),
                         " bytes)");
  unsigned char h[kLocalSize];
  zip.read(header_offset, kLocalSize, h);
  PIXEL3DMM_CHECK_FORMAT(load_le(h, 4) == kLocalSig, where, "bad local header signature at offset ", header_offset);
  const std::uint64_t start = header_offset + kLocalSize + load_le(h + 26, 2) + load_le(h + 28, 2);
  PIXEL3DMM_CHECK_FORMAT(start <= zip.size() && m.compressed_size <= zip.size() - start, where, "data [", start, ", ",
                         start + m.compressed_size, ") runs past the end of the archive (", zip.size(), " bytes)");
  return start;
}

std::string inflate_bounded(const ByteSource& zip, const ZipMember& m, const std::string& where) {
  PIXEL3DMM_CHECK_FORMAT(m.uncompressed_size <= m.compressed_size * kMaxDeflateRatio + 1024, where,
                         "declared uncompressed size is impossible for ", m.compressed_size,
                         " deflated bytes, expected at most ", kMaxDeflateRatio, " x that, found ",
                         m.uncompressed_size);
  z_stream zs{};
  PIXEL3DMM_CHECK_T(Error, inflateInit2(&zs, -MAX_WBITS) == Z_OK, where, ": cannot initialise zlib");
  struct End {
    z_stream* zs;
    ~End() { inflateEnd(zs); }
  } end{&zs};

  std::string in(static_cast<size_t>(std::min(m.compressed_size, kChunk)), '\0');
  std::string out;
  std::uint64_t consumed = 0, produced = 0;
  unsigned char spill;  // output beyond the declared size lands here and is an error
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.avail_in == 0) {
      PIXEL3DMM_CHECK_FORMAT(consumed < m.compressed_size, where, "deflate stream is truncated, it ended after ",
                             produced, " of the declared ", m.uncompressed_size, " bytes");
      const std::uint64_t n = std::min<std::uint64_t>(in.size(), m.compressed_size - consumed);
      zip.read(m.data_offset + consumed, n, in.data());
      consumed += n;
      zs.next_in = reinterpret_cast<Bytef*>(in.data());
      zs.avail_in = static_cast<uInt>(n);
    }
    // Grow with the output actually produced, so a lying header costs no more memory than its real content.
    if (produced == out.size() && out.size() < m.uncompressed_size)
      out.resize(static_cast<size_t>(
          std::min<std::uint64_t>(m.uncompressed_size, std::max<std::uint64_t>(2 * out.size(), kChunk))));
    const bool full = produced == m.uncompressed_size;
    zs.next_out = full ? &spill : reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = full ? 1 : static_cast<uInt>(std::min<std::uint64_t>(out.size() - produced, UINT_MAX));
    const uInt room = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    PIXEL3DMM_CHECK_FORMAT(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR, where, "corrupt deflate data (",
                           zs.msg ? zs.msg : "zlib error", ")");
    PIXEL3DMM_CHECK_FORMAT(!(full && zs.avail_out == 0), where, "inflates to more than the declared ",
                           m.uncompressed_size, " bytes");
    produced += room - zs.avail_out;
  }
  PIXEL3DMM_CHECK_FORMAT(produced == m.uncompressed_size, where, "inflates to ", produced,
                         " bytes, expected the declared ", m.uncompressed_size);
  out.resize(static_cast<size_t>(produced));
  return out;
}

std::uint32_t crc32_of(std::string_view bytes, std::uint32_t crc = 0) {
  // zlib's crc32 takes 32-bit lengths.
  for (std::uint64_t pos = 0; pos < bytes.size(); pos += kChunk * 1024) {
    const auto n = std::min<std::uint64_t>(bytes.size() - pos, kChunk * 1024);
    crc = static_cast<std::uint32_t>(
        ::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + pos), static_cast<uInt>(n)));
  }
  return crc;
}

// Little-endian record builder.
struct Record {
  std::string bytes;
  Record& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Record& raw(std::string_view s) {
    bytes.append(s);
    return *this;
  }
};

constexpr std::uint16_t kDosDate1980 = (0 << 9) | (1 << 5) | 1;  // fixed timestamp: identical input, identical bytes
constexpr std::uint16_t kFlagUtf8 = 1 << 11;

std::uint16_t name_flags(const std::string& name) {
  return std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }) ? kFlagUtf8
                                                                                                             : 0;
}

// Code page 437, bytes 0x80-0xff: ZIP's encoding for names without the UTF-8 flag (APPNOTE appendix D).
constexpr std::uint16_t kCp437High[128] = {
    0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7, 0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee,
    0x00ec, 0x00c4, 0x00c5, 0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9, 0x00ff, 0x00d6,
    0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192, 0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa,
    0x00ba, 0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb, 0x2591, 0x2592, 0x2593, 0x2502,
    0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510, 0x2514,
    0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f, 0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550,
    0x256c, 0x2567, 0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b, 0x256a, 0x2518, 0x250c,
    0x2588, 0x2584, 0x258c, 0x2590, 0x2580, 0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4,
    0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229, 0x2261, 0x00b1, 0x2265, 0x2264, 0x2320,
    0x2321, 0x00f7, 0x2248, 0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
};

void append_utf8(std::string& out, std::uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
}

// The member name as UTF-8, so keys match what np.load reports and convert to Python strings.
std::string decode_name(std::string_view raw, bool utf8_flag, const std::string& file) {
  if (utf8_flag) {
    PIXEL3DMM_CHECK_FORMAT(is_valid_utf8(raw), file, "a member name is flagged UTF-8 but is not valid UTF-8");
    return std::string(raw);
  }
  std::string out;
  for (const char ch : raw) {
    const auto b = static_cast<unsigned char>(ch);
    append_utf8(out, b < 0x80 ? b : kCp437High[b - 0x80]);
  }
  return out;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char b = *p;
    int n;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte (Unicode table 3-7)
    if (b < 0x80) {
      ++p;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      n = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b == 0xe0) lo = 0xa0;
      if (b == 0xed) hi = 0x9f;  // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b == 0xf0) lo = 0x90;
      if (b == 0xf4) hi = 0x8f;  // nothing past U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= n; ++i)
      if ((p[i] & 0xc0) != 0x80) return false;
    p += n + 1;
  }
  return true;
}

std::vector<ZipMember> read_zip_directory(const ByteSource& zip) {
  const std::string& file = zip.name();
  const DirectoryLocation loc = locate_directory(zip);
  const std::string directory = zip.read_string(loc.offset, loc.size);
  Reader r{directory};
  std::vector<ZipMember> members;
  std::set<std::string> names;
  for (std::uint64_t i = 0; i < loc.entries; ++i) {
    PIXEL3DMM_CHECK_FORMAT(r.has(kCentralSize) && load_le(directory.data() + r.pos, 4) == kCentralSig, file,
                           "central directory entry ", i, " of ", loc.entries, " is truncated or corrupt");
    const std::uint64_t start = r.pos;
    r.pos += 8;
    const auto flags = r.le(2);
    ZipMember m;
    m.method = static_cast<std::uint16_t>(r.le(2));
    r.pos += 4;  // time, date
    m.crc32 = static_cast<std::uint32_t>(r.le(4));
    m.compressed_size = r.le(4);
    m.uncompressed_size = r.le(4);
    const auto name_len = r.le(2), extra_len = r.le(2), comment_len = r.le(2);
    r.pos += 8;  // disk, internal and external attributes
    std::uint64_t header_offset = r.le(4);
    PIXEL3DMM_CHECK_FORMAT(r.has(name_len + extra_len + comment_len), file, "central directory entry ", i,
                           " is truncated");
    m.name = decode_name(std::string_view(directory).substr(start + kCentralSize, name_len), flags & kFlagUtf8, file);
    const std::string where = concat(file, ": member '", m.name, "'");
    apply_zip64_extra(std::string_view(directory).substr(start + kCentralSize + name_len, extra_len),
                      {&m.uncompressed_size, &m.compressed_size, &header_offset}, where);
    r.pos += name_len + extra_len + comment_len;

    PIXEL3DMM_CHECK_FORMAT(!(flags & 0x41), where, "encrypted members are not supported");
    PIXEL3DMM_CHECK_FORMAT(m.method == 0 || m.method == 8, where,
                           "compression method not supported, expected 0 (stored) or 8 (deflated), found ", m.method);
    PIXEL3DMM_CHECK_FORMAT(m.method != 0 || m.compressed_size == m.uncompressed_size, where,
                           "stored member sizes disagree, expected equal compressed and uncompressed sizes, found ",
                           m.compressed_size, " and ", m.uncompressed_size);
    PIXEL3DMM_CHECK_FORMAT(names.insert(m.name).second, where, "appears twice in the archive");
    m.data_offset = locate_data(zip, m, header_offset, where);
    members.push_back(std::move(m));
  }
  return members;
}

std::string read_zip_member(const ByteSource& zip, const ZipMember& m) {
  const std::string where = concat(zip.name(), ": member '", m.name, "'");
  std::string data = m.method == 8 ? inflate_bounded(zip, m, where) : zip.read_string(m.data_offset, m.compressed_size);
  const std::uint32_t crc = crc32_of(data);
  if (crc != m.crc32) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "expected 0x%08x, found 0x%08x", m.crc32, crc);
    throw FormatError(concat(where, ": CRC-32 mismatch (corrupt data), ", buf));
  }
  return data;
}

// --- writing ---

ZipWriter::ZipWriter(std::FILE* file, std::string name, bool force_zip64)
    : file_(file), name_(std::move(name)), force_zip64_(force_zip64) {}

void ZipWriter::put(const void* data, std::uint64_t n) {
  if (n > 0 && std::fwrite(data, 1, n, file_) != n)
    throw Error(concat(name_, ": cannot write (", std::strerror(errno), ")"));
  offset_ += n;
}

void ZipWriter::add(const std::string& member_name, std::initializer_list<std::string_view> parts, bool deflate) {
  ZipMember m;
  m.name = member_name;
  m.method = deflate ? 8 : 0;
  for (std::string_view p : parts) {
    m.crc32 = crc32_of(p, m.crc32);
    m.uncompressed_size += p.size();
  }

  std::string compressed;
  if (deflate) {
    z_stream zs{};
    PIXEL3DMM_CHECK_T(Error,
                      deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK,
                      name_, ": cannot initialise zlib");
    struct End {
      z_stream* zs;
      ~End() { deflateEnd(zs); }
    } end{&zs};
    std::vector<std::string_view> inputs(parts);
    if (inputs.empty()) inputs.emplace_back();  // still one (empty) deflate stream with its end marker
    std::uint64_t out_pos = 0;
    for (auto p = inputs.begin(); p != inputs.end(); ++p) {
      std::uint64_t in_pos = 0;
      int rc = Z_OK;
      for (;;) {
        const std::uint64_t n = std::min<std::uint64_t>(p->size() - in_pos, UINT_MAX);
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p->data() + in_pos));
        zs.avail_in = static_cast<uInt>(n);
        const bool finish = p + 1 == inputs.end() && in_pos + n == p->size();
        do {
          if (out_pos == compressed.size()) compressed.resize(std::max<std::uint64_t>(2 * compressed.size(), kChunk));
          zs.next_out = reinterpret_cast<Bytef*>(compressed.data() + out_pos);
          zs.avail_out = static_cast<uInt>(std::min<std::uint64_t>(compressed.size() - out_pos, UINT_MAX));
          const uInt room = zs.avail_out;
          rc = ::deflate(&zs, finish ? Z_FINISH : Z_NO_FLUSH);
          PIXEL3DMM_CHECK_T(Error, rc != Z_STREAM_ERROR, name_, ": zlib deflate failed");
          out_pos += room - zs.avail_out;
        } while (zs.avail_out == 0 || (finish && rc != Z_STREAM_END));
        in_pos += n - zs.avail_in;
        if (in_pos == p->size()) break;
      }
    }
    compressed.resize(out_pos);
    m.compressed_size = out_pos;
  } else {
    m.compressed_size = m.uncompressed_size;
  }

  const bool zip64 = force_zip64_ || m.uncompressed_size >= k32 || m.compressed_size >= k32;
  Record h;
  h.le(kLocalSig, 4).le(zip64 ? 45 : 20, 2).le(name_flags(m.name), 2).le(m.method, 2).le(0, 2).le(kDosDate1980, 2);
  h.le(m.crc32, 4).le(zip64 ? k32 : m.compressed_size, 4).le(zip64 ? k32 : m.uncompressed_size, 4);
  h.le(m.name.size(), 2).le(zip64 ? 20 : 0, 2).raw(m.name);
  if (zip64) h.le(kZip64ExtraId, 2).le(16, 2).le(m.uncompressed_size, 8).le(m.compressed_size, 8);

  header_offsets_.push_back(offset_);
  put(h.bytes.data(), h.bytes.size());
  m.data_offset = offset_;
  if (deflate) {
    put(compressed.data(), compressed.size());
  } else {
    for (std::string_view p : parts) put(p.data(), p.size());
  }
  members_.push_back(std::move(m));
}

void ZipWriter::finish() {
  const std::uint64_t directory_offset = offset_;
  for (size_t i = 0; i < members_.size(); ++i) {
    const ZipMember& m = members_[i];
    // Each 32-bit field that overflows (or all, when forced) moves into the ZIP64 extra field, in APPNOTE's order.
    Record extra;
    auto field = [&](std::uint64_t v) -> std::uint64_t {
      if (!force_zip64_ && v < k32) return v;
      extra.le(v, 8);
      return k32;
    };
    const std::uint64_t usize = field(m.uncompressed_size), csize = field(m.compressed_size),
                        offset = field(header_offsets_[i]);
    const bool zip64 = !extra.bytes.empty();
    Record c;
    c.le(kCentralSig, 4).le(0x0300 | (zip64 ? 45 : 20), 2).le(zip64 ? 45 : 20, 2).le(name_flags(m.name), 2);
    c.le(m.method, 2).le(0, 2).le(kDosDate1980, 2).le(m.crc32, 4).le(csize, 4).le(usize, 4);
    c.le(m.name.size(), 2).le(zip64 ? 4 + extra.bytes.size() : 0, 2).le(0, 2).le(0, 2).le(0, 2);
    c.le(std::uint64_t{0100644} << 16, 4).le(offset, 4).raw(m.name);
    if (zip64) c.le(kZip64ExtraId, 2).le(extra.bytes.size(), 2).raw(extra.bytes);
    put(c.bytes.data(), c.bytes.size());
  }
  const std::uint64_t directory_size = offset_ - directory_offset, entries = members_.size();
  const bool zip64 = force_zip64_ || entries >= 0xffff || directory_size >= k32 || directory_offset >= k32;
  Record e;
  if (zip64) {
    const std::uint64_t record_offset = offset_;
    e.le(kZip64EndSig, 4).le(kZip64EndSize - 12, 8).le(0x032d, 2).le(45, 2).le(0, 4).le(0, 4);
    e.le(entries, 8).le(entries, 8).le(directory_size, 8).le(directory_offset, 8);
    e.le(kZip64LocatorSig, 4).le(0, 4).le(record_offset, 8).le(1, 4);
  }
  const std::uint64_t entries16 = zip64 ? 0xffff : entries;
  e.le(kEndSig, 4).le(0, 2).le(0, 2).le(entries16, 2).le(entries16, 2);
  e.le(zip64 ? k32 : directory_size, 4).le(zip64 ? k32 : directory_offset, 4).le(0, 2);
  put(e.bytes.data(), e.bytes.size());
}

}  // namespace pixel3dmm::io::detail

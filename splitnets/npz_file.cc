#include "splitnets/npz_file.h"

#include <zip.h>

#include <cstring>
#include <limits>
#include <regex>

namespace edgebed {
namespace {

// A .npy member opened for reading: closed on every path out.
struct Member {
  zip_file_t* f = nullptr;
  ~Member() {
    if (f) zip_fclose(f);
  }
};

Status ReadExact(zip_file_t* f, void* out, uint64_t n, const std::string& what) {
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    const zip_int64_t got = zip_fread(f, p, n);
    if (got <= 0) return Status::Corruption(what + ": ends early or cannot be read (" + zip_file_strerror(f) + ")");
    p += got;
    n -= static_cast<uint64_t>(got);
  }
  return Status::Ok();
}

Status Skip(zip_file_t* f, bool stored, uint64_t at, uint64_t n, const std::string& what) {
  if (n == 0) return Status::Ok();
  if (stored && zip_fseek(f, static_cast<zip_int64_t>(at + n), SEEK_SET) == 0) return Status::Ok();
  std::vector<uint8_t> scratch(1 << 16);
  while (n > 0) {
    const uint64_t k = std::min<uint64_t>(n, scratch.size());
    EDGEBED_RETURN_IF_ERROR(ReadExact(f, scratch.data(), k, what));
    n -= k;
  }
  return Status::Ok();
}

// Parses "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 28, 28), }".
Status ParseHeader(const std::string& text, const std::string& what, NpyHeader* h) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("'descr'\\s*:\\s*'([<>|=])([a-zA-Z])(\\d+)'")))
    return Status::InvalidArgument(what + ": dtype is not a plain number type (header " + text + ")");
  const char order = m[1].str()[0];
  h->kind = m[2].str()[0];
  h->item_bytes = std::stoi(m[3].str());
  if (order == '>' && h->item_bytes > 1) return Status::InvalidArgument(what + ": big-endian data is not supported; save it little-endian");
  if (std::string("uifb").find(h->kind) == std::string::npos || (h->kind == 'f' && h->item_bytes != 4 && h->item_bytes != 8) ||
      (h->kind != 'f' && h->item_bytes != 1 && h->item_bytes != 2 && h->item_bytes != 4 && h->item_bytes != 8))
    return Status::InvalidArgument(what + ": dtype " + m[2].str() + m[3].str() +
                                   " is not supported; allowed: uint8..64, int8..64, float32, float64, bool");
  if (!std::regex_search(text, m, std::regex("'fortran_order'\\s*:\\s*(True|False)")) || m[1] == "True")
    return Status::InvalidArgument(what + ": Fortran-order arrays are not supported; save with np.ascontiguousarray");
  if (!std::regex_search(text, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
    return Status::InvalidArgument(what + ": the header has no shape");
  h->shape.clear();
  const std::string dims = m[1].str();
  const std::regex number("\\d+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it)
    h->shape.push_back(std::stoll(it->str()));
  if (h->shape.empty()) return Status::InvalidArgument(what + ": a scalar; an array with one row per sample is needed");
  return Status::Ok();
}

// Reads the item at `p` as T.
template <typename T>
T Convert(const uint8_t* p, char kind, int bytes) {
  switch (kind) {
    case 'f': {
      if (bytes == 4) { float v; std::memcpy(&v, p, 4); return static_cast<T>(v); }
      double v; std::memcpy(&v, p, 8); return static_cast<T>(v);
    }
    case 'u': case 'b': {
      uint64_t v = 0; std::memcpy(&v, p, static_cast<size_t>(bytes)); return static_cast<T>(v);
    }
    default: {
      int64_t v = 0;
      std::memcpy(&v, p, static_cast<size_t>(bytes));
      if (bytes < 8 && (p[bytes - 1] & 0x80)) v |= ~((int64_t{1} << (8 * bytes)) - 1);  // sign-extend
      return static_cast<T>(v);
    }
  }
}

}  // namespace

uint64_t NpyHeader::row_values() const {
  uint64_t n = 1;
  for (size_t i = 1; i < shape.size(); ++i) n *= static_cast<uint64_t>(shape[i]);
  return n;
}

Result<std::unique_ptr<NpzFile>> NpzFile::Open(const std::string& path) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY, &err);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    std::string why = zip_error_strerror(&e);
    zip_error_fini(&e);
    return Status::NotFound("cannot open " + path + " as .npz (numpy.savez): " + why);
  }
  std::unique_ptr<NpzFile> f(new NpzFile());
  f->path_ = path;
  f->zip_ = z;
  return f;
}

NpzFile::~NpzFile() {
  if (zip_) zip_discard(static_cast<zip_t*>(zip_));
}

bool NpzFile::Has(const std::string& array) const {
  return zip_name_locate(static_cast<zip_t*>(zip_), (array + ".npy").c_str(), 0) >= 0;
}

template <typename Check, typename Take>
Status NpzFile::ForRows(const std::string& array, const std::vector<uint64_t>* rows, NpyHeader* h, Check check, Take take) const {
  auto* z = static_cast<zip_t*>(zip_);
  const std::string member = array + ".npy", what = path_ + " member " + member;
  const zip_int64_t index = zip_name_locate(z, member.c_str(), 0);
  if (index < 0) return Status::NotFound(path_ + " has no array '" + array + "' (members are named <array>.npy)");
  zip_stat_t st;
  if (zip_stat_index(z, static_cast<zip_uint64_t>(index), 0, &st) != 0) return Status::Corruption(what + ": cannot stat");
  const bool stored = (st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method == ZIP_CM_STORE;
  Member m;
  m.f = zip_fopen_index(z, static_cast<zip_uint64_t>(index), 0);
  if (!m.f) return Status::Corruption(what + ": cannot open (" + std::string(zip_strerror(z)) + ")");
  uint8_t pre[12];
  EDGEBED_RETURN_IF_ERROR(ReadExact(m.f, pre, 10, what));
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0) return Status::Corruption(what + ": not a .npy array (no \\x93NUMPY magic)");
  uint64_t header_len = pre[8] | (uint64_t{pre[9]} << 8), at = 10;
  if (pre[6] >= 2) {
    EDGEBED_RETURN_IF_ERROR(ReadExact(m.f, pre + 10, 2, what));
    header_len = pre[8] | (uint64_t{pre[9]} << 8) | (uint64_t{pre[10]} << 16) | (uint64_t{pre[11]} << 24);
    at = 12;
  }
  if (header_len > (1u << 20)) return Status::Corruption(what + ": header of " + std::to_string(header_len) + " bytes");
  std::string text(header_len, '\0');
  EDGEBED_RETURN_IF_ERROR(ReadExact(m.f, text.data(), header_len, what));
  at += header_len;
  h->member = member;
  EDGEBED_RETURN_IF_ERROR(ParseHeader(text, what, h));
  const uint64_t row_bytes = h->row_values() * static_cast<uint64_t>(h->item_bytes);
  if ((st.valid & ZIP_STAT_SIZE) && st.size != at + h->rows() * row_bytes)
    return Status::Corruption(what + ": holds " + std::to_string(st.size - at) + " data bytes; shape and dtype need " +
                              std::to_string(h->rows() * row_bytes));
  EDGEBED_RETURN_IF_ERROR(check(*h));
  std::vector<uint8_t> buf(row_bytes);
  uint64_t next = 0;  // the row the stream is at
  const uint64_t count = rows ? rows->size() : h->rows();
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t r = rows ? (*rows)[k] : k;
    if (r >= h->rows() || r < next)
      return Status::InvalidArgument(what + ": row " + std::to_string(r) + " asked for (rows ascending, below " +
                                     std::to_string(h->rows()) + ")");
    EDGEBED_RETURN_IF_ERROR(Skip(m.f, stored, at + next * row_bytes, (r - next) * row_bytes, what));
    EDGEBED_RETURN_IF_ERROR(ReadExact(m.f, buf.data(), row_bytes, what));
    take(buf.data());
    next = r + 1;
  }
  return Status::Ok();
}

Result<NpyHeader> NpzFile::Header(const std::string& array) const {
  NpyHeader h;
  const std::vector<uint64_t> none;
  EDGEBED_RETURN_IF_ERROR(ForRows(array, &none, &h, [](const NpyHeader&) { return Status::Ok(); }, [](const uint8_t*) {}));
  return h;
}

template <typename T, typename Allowed>
Result<std::vector<T>> NpzFile::ReadAs(const std::string& array, const std::vector<uint64_t>* rows, Allowed allowed) const {
  std::vector<T> out;
  NpyHeader h;
  EDGEBED_RETURN_IF_ERROR(ForRows(
      array, rows, &h,
      [&](const NpyHeader& hh) {
        EDGEBED_RETURN_IF_ERROR(allowed(hh));
        out.reserve((rows ? rows->size() : hh.rows()) * hh.row_values());
        return Status::Ok();
      },
      [&](const uint8_t* p) {
        for (uint64_t i = 0; i < h.row_values(); ++i) out.push_back(Convert<T>(p + i * h.item_bytes, h.kind, h.item_bytes));
      }));
  return out;
}

Result<std::vector<float>> NpzFile::ReadFloat(const std::string& array, const std::vector<uint64_t>* rows) const {
  return ReadAs<float>(array, rows, [](const NpyHeader&) { return Status::Ok(); });
}

Result<std::vector<int64_t>> NpzFile::ReadInt(const std::string& array, const std::vector<uint64_t>* rows) const {
  return ReadAs<int64_t>(array, rows, [this](const NpyHeader& h) {
    if (h.kind == 'f') return Status::InvalidArgument(path_ + " member " + h.member + ": float data where integers are needed");
    if (h.kind == 'u' && h.item_bytes == 8)
      return Status::InvalidArgument(path_ + " member " + h.member + ": uint64 data; use int64");
    return Status::Ok();
  });
}

Result<std::vector<uint8_t>> NpzFile::ReadU8(const std::string& array, const std::vector<uint64_t>* rows) const {
  return ReadAs<uint8_t>(array, rows, [this](const NpyHeader& h) {
    if (h.kind != 'u' || h.item_bytes != 1) return Status::InvalidArgument(path_ + " member " + h.member + ": not uint8");
    return Status::Ok();
  });
}

std::string NpyBytes(const std::string& descr, const std::vector<int64_t>& shape, const void* data, size_t bytes,
                     bool fortran) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(data), bytes);
  return out;
}

Status WriteNpz(const std::string& path, const std::vector<NpyArray>& arrays) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    Status st = Status::Unavailable(path + ": cannot be written (" + zip_error_strerror(&e) + ")");
    zip_error_fini(&e);
    return st;
  }
  std::vector<std::string> members;  // alive until zip_close reads them
  members.reserve(arrays.size());
  for (const auto& a : arrays) {
    members.push_back(NpyBytes(a.descr, a.shape, a.data, a.bytes));
    zip_source_t* src = zip_source_buffer(z, members.back().data(), members.back().size(), 0);
    const zip_int64_t i = src ? zip_file_add(z, (a.name + ".npy").c_str(), src, ZIP_FL_OVERWRITE) : -1;
    if (i < 0 || zip_set_file_compression(z, static_cast<zip_uint64_t>(i), ZIP_CM_STORE, 0) != 0) {
      if (src && i < 0) zip_source_free(src);
      Status st = Status::Unavailable(path + ": cannot add " + a.name + ".npy (" + zip_strerror(z) + ")");
      zip_discard(z);
      return st;
    }
  }
  if (zip_close(z) != 0) {
    Status st = Status::Unavailable(path + ": cannot be written (" + zip_strerror(z) + ")");
    zip_discard(z);
    return st;
  }
  return Status::Ok();
}

}  // namespace edgebed

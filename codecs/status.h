// Errors as values (LevelDB style): every I/O, decode and socket boundary returns a Status or a
// Result<T>; exceptions never cross a part's API. Messages name the field or message at fault.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace edgebed {

// [[nodiscard]]: a Status that is dropped is a compiler warning; drop one on purpose with (void).
class [[nodiscard]] Status {
 public:
  enum class Code { kOk = 0, kInvalidArgument, kCorruption, kNotFound, kIoError, kTimeout, kUnavailable, kFailed };
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status IoError(std::string m) { return Status(Code::kIoError, std::move(m)); }
  static Status Timeout(std::string m) { return Status(Code::kTimeout, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  // A computation that ran and failed on valid input (a model that throws, a loss that diverges).
  static Status Failed(std::string m) { return Status(Code::kFailed, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

inline std::string Status::ToString() const {
  static const char* names[] = {"OK", "invalid argument", "corruption", "not found",
                                "I/O error", "timeout", "unavailable", "failed"};
  if (ok()) return "OK";
  return std::string(names[static_cast<int>(code_)]) + ": " + message_;
}

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}   // NOLINT: must not be Ok
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define EDGEBED_RETURN_IF_ERROR(expr)      \
  do {                                     \
    ::edgebed::Status _st = (expr);        \
    if (!_st.ok()) return _st;             \
  } while (0)

#define EDGEBED_CONCAT_INNER(a, b) a##b
#define EDGEBED_CONCAT(a, b) EDGEBED_CONCAT_INNER(a, b)
// `EDGEBED_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result's value, or returns its Status.
#define EDGEBED_ASSIGN_OR_RETURN(lhs, expr) \
  EDGEBED_ASSIGN_OR_RETURN_IMPL(EDGEBED_CONCAT(_result_, __LINE__), lhs, expr)
#define EDGEBED_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

}  // namespace edgebed

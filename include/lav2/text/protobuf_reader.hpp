// A minimal, bounds-checked reader of the protobuf wire format (proto2/proto3 binary encoding), enough to
// read SentencePiece's ModelProto. Format, per field: a varint key = (field_number << 3) | wire_type, then
//   wire type 0  varint            (1-10 bytes, 7 bits each, little-endian groups, high bit = "more")
//   wire type 1  fixed64           (8 bytes, little-endian)
//   wire type 2  length-delimited  (varint length, then that many bytes: strings, bytes, sub-messages)
//   wire type 5  fixed32           (4 bytes, little-endian; `float` fields)
// Wire types 3/4 (groups, deprecated) are rejected. Every read is checked against the end of the buffer;
// errors are lav2::load_error naming the file and the field path ("ModelProto.pieces[3].piece").
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "lav2/core/error.hpp"

namespace lav2::text {

class ProtoReader {
 public:
  enum WireType : int { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

  /// `file` and `path` (the message's name, e.g. "ModelProto") only serve the error messages.
  ProtoReader(std::string_view data, std::string file, std::string path)
      : data_(data), file_(std::move(file)), path_(std::move(path)) {}

  /// Reads the next field key; false at the end of the message.
  bool next() {
    if (pos_ >= data_.size()) return false;
    field_name_.clear();
    const std::uint64_t key = read_varint("field key");
    field_ = static_cast<std::uint32_t>(key >> 3);
    wire_ = static_cast<int>(key & 7);
    if (field_ == 0 || (key >> 3) > 0x1FFFFFFF) fail("field key", "invalid field number ", key >> 3);
    if (wire_ != kVarint && wire_ != kFixed64 && wire_ != kLengthDelimited && wire_ != kFixed32)
      fail("field key", "unsupported wire type ", wire_, " for field ", field_);
    return true;
  }

  std::uint32_t field() const { return field_; }
  int wire_type() const { return wire_; }

  /// Names the current field for error messages (e.g. "pieces[3]").
  void name(std::string field_name) { field_name_ = std::move(field_name); }

  std::uint64_t varint() {
    expect(kVarint);
    return read_varint(nullptr);
  }
  bool boolean() { return varint() != 0; }
  /// An int32 field: negative values are sign-extended to 10 bytes on the wire.
  std::int32_t int32() { return static_cast<std::int32_t>(static_cast<std::uint32_t>(varint())); }

  float fixed32_float() {
    expect(kFixed32);
    need(4, nullptr);
    std::uint32_t u = 0;
    for (int i = 3; i >= 0; --i) u = (u << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    pos_ += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }

  /// The bytes of a length-delimited field (string, bytes or sub-message), a view into the buffer.
  std::string_view bytes() {
    expect(kLengthDelimited);
    const std::uint64_t len = read_varint(nullptr);
    need(len, nullptr);
    std::string_view out = data_.substr(pos_, static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return out;
  }

  /// Skips the current field, whatever its wire type (unknown fields are ignored, as protobuf does).
  void skip() {
    switch (wire_) {
      case kVarint: read_varint(nullptr); break;
      case kFixed64:
        need(8, nullptr);
        pos_ += 8;
        break;
      case kFixed32:
        need(4, nullptr);
        pos_ += 4;
        break;
      default: bytes(); break;
    }
  }

  const std::string& file() const { return file_; }
  /// The path of the current field, e.g. "ModelProto.pieces[3]" or "ModelProto (field 7)".
  std::string where() const {
    if (!field_name_.empty()) return path_ + "." + field_name_;
    return ::lav2::detail::str_cat(path_, " (field ", field_, ")");
  }

  template <class... Args>
  [[noreturn]] void fail(const char* what, Args&&... args) const {
    LAV2_THROW(load_error, "tokenizer '", file_, "': ", what ? std::string(path_) + ": " + what : where(), ": ",
               std::forward<Args>(args)...);
  }

 private:
  void expect(int wire) const {
    if (wire_ != wire) fail(nullptr, "wire type ", wire_, ", expected ", wire);
  }
  void need(std::uint64_t n, const char* what) const {
    if (n > data_.size() - pos_)
      fail(what, "truncated: needs ", n, " bytes at offset ", pos_, ", ", data_.size() - pos_, " left");
  }
  std::uint64_t read_varint(const char* what) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) fail(what, "truncated varint at offset ", pos_);
      const auto b = static_cast<unsigned char>(data_[pos_++]);
      if (shift == 63 && b > 1) fail(what, "varint overflows 64 bits at offset ", pos_ - 1);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(what, "varint longer than 10 bytes at offset ", pos_);
  }

  std::string_view data_;
  std::size_t pos_ = 0;
  std::string file_, path_, field_name_;
  std::uint32_t field_ = 0;
  int wire_ = 0;
};

}  // namespace lav2::text

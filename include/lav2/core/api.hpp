// How lav2's file readers reach a program: defined in the headers (header-only, the default), or
// compiled once in the library unit.
//
// The readers (zip, pickle, TorchScript, safetensors, JSON, SentencePiece, stb_image) are big and
// off the hot path, yet a header-only library compiles them into every translation unit that
// loads a model: about 450 KB of object code and most of the compile time of such a file. So
// their entry points are marked LAV2_API and their definitions live in a <header>-inl.hpp:
//
//   - header-only: LAV2_API is `inline` and each header includes its -inl.hpp, as before;
//   - a program built with lav2_add_library_unit(target) (cmake/lav2_library_unit.cmake) defines
//     LAV2_COMPILED=1: the headers only declare the entry points, and the library unit (a
//     generated source that defines LAV2_LIBRARY_UNIT and includes lav2/detail/library_unit.hpp)
//     compiles their definitions once per build tree.
//
// The hot path (the model's forward, the kernels' glue) stays inline in the headers either way.
// Every translation unit of one program must agree on LAV2_COMPILED (the CMake helper sets it for
// the whole target).
#pragma once

#ifndef LAV2_COMPILED
#define LAV2_COMPILED 0
#endif

#if LAV2_COMPILED
#define LAV2_API
#else
#define LAV2_API inline
#endif

// 1 where the -inl.hpp definitions are compiled: header-only programs and the library unit.
#if !LAV2_COMPILED || defined(LAV2_LIBRARY_UNIT)
#define LAV2_DEFINE_API 1
#else
#define LAV2_DEFINE_API 0
#endif

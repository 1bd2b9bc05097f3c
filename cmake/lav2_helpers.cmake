# Helpers for lav2's own executables (CLI, tests, benchmarks, examples). Nothing here touches
# the exported lav2::lav2 target.

# lav2_program_flags(<target>): warnings, -O2 outside the kernels, the per-level kernel units (run-time CPU dispatch:
# lav2_kernel_units.cmake), the library unit (the file readers compiled once: lav2_library_unit.cmake), and
# -march=native when LAV2_NATIVE is ON.
function(lav2_program_flags tgt)
  target_compile_options(${tgt} PRIVATE -Wall -Wextra)
  # -O2, not Release's -O3, for everything but the kernels: the hot loops are in the kernel units,
  # which keep -O3 (lav2_kernel_units.cmake); the rest is loading, parsing and orchestration, and
  # -O3 only made it slower to compile (docs/results.md has both measurements).
  target_compile_options(${tgt} PRIVATE $<$<CONFIG:Release>:-O2>)
  lav2_add_kernel_units(${tgt})
  lav2_add_library_unit(${tgt})
  if(LAV2_NATIVE)
    target_compile_options(${tgt} PRIVATE -march=native)
  endif()
endfunction()

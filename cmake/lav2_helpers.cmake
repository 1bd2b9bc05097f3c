# Helpers for lav2's own executables (CLI, tests, benchmarks, examples). Nothing here touches
# the exported lav2::lav2 target.

# lav2_program_flags(<target>): warnings, and -march=native unless LAV2_NATIVE is OFF.
function(lav2_program_flags tgt)
  target_compile_options(${tgt} PRIVATE -Wall -Wextra)
  if(LAV2_NATIVE)
    target_compile_options(${tgt} PRIVATE -march=native)
  endif()
endfunction()

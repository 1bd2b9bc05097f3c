# Runs one examples/ program on the tiny fixtures (cmake -P, from tests/CMakeLists.txt): it must
# exit 0 and print an answer. The fixtures' weights are random, so the text itself is not checked;
# what is checked is that the example's whole path (load, image, ask, stream) still works.
#   -DEXE=<program> -DARGS=<arguments separated by '|'>
string(REPLACE "|" ";" ARGS "${ARGS}")
execute_process(COMMAND "${EXE}" ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(STRIP "${out}" answer)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} exited ${rc}:\n${out}${err}")
elseif(answer STREQUAL "")
  message(FATAL_ERROR "${EXE} printed nothing on stdout (stderr: ${err})")
endif()
message(STATUS "${EXE}: ${rc}, ${out}")

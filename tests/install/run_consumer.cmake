# Installs lav2 (library only) into a scratch prefix, then configures, builds and runs the consumer
# project in tests/install/consumer against it with find_package(lav2 CONFIG REQUIRED); the consumer
# runs a forward pass of a tiny random model and fails unless its logits are finite and deterministic.
file(REMOVE_RECURSE "${WORK}")
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S "${LAV2_SOURCE}" -B "${WORK}/lav2-build" -G "${GENERATOR}"
    -DLAV2_BUILD_TESTS=OFF -DLAV2_BUILD_BENCHMARKS=OFF -DLAV2_BUILD_EXAMPLES=OFF -DLAV2_INSTALL=ON
    -DCMAKE_INSTALL_PREFIX=${WORK}/prefix)
run(${CMAKE_COMMAND} --install "${WORK}/lav2-build")
run(${CMAKE_COMMAND} -S "${LAV2_SOURCE}/tests/install/consumer" -B "${WORK}/consumer-build" -G "${GENERATOR}"
    -DCMAKE_PREFIX_PATH=${WORK}/prefix -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${WORK}/consumer-build")
run("${WORK}/consumer-build/consumer")
run("${WORK}/consumer-build/consumer_header_only")

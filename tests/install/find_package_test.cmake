# Installs the built tree into a fresh prefix, builds examples/cpp against it with find_package(pixel3dmm) and
# runs the three examples on tiny settings: the safetensors round trip; `reconstruct` on a photo of Debian's dlib
# examples (libdlib-dev brings it) with the synthetic FLAME-layout model and the embedded demo networks; and
# `fit_predictions` on the folder `reconstruct` wrote, reading its official uv_map.png / normals.png.
# Invoked by CTest: cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DPHOTO=... -P this file.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/cpp -B ${WORK_DIR}/build -G Ninja -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/pixel3dmm_example ${WORK_DIR}/example.safetensors)
message(STATUS "${last_output}")
if(NOT last_output MATCHES "round trip ok")
  message(FATAL_ERROR "the example did not report a successful round trip:\n${last_output}")
endif()

# Tiny settings: the programs, the installed headers and the library are under test here, not the fit's accuracy.
set(tiny --iters 4 --camera-steps 4 --image-size 64)
run(${WORK_DIR}/build/reconstruct ${PHOTO} --out ${WORK_DIR}/reconstruct-out ${tiny})
message(STATUS "${last_output}")
if(NOT last_output MATCHES "reconstruct ok" OR NOT EXISTS ${WORK_DIR}/reconstruct-out/mesh.obj
   OR NOT EXISTS ${WORK_DIR}/reconstruct-out/uv_map.png)
  message(FATAL_ERROR "the reconstruct example did not write its mesh and fit inputs:\n${last_output}")
endif()
run(${WORK_DIR}/build/fit_predictions ${WORK_DIR}/reconstruct-out --uv ${WORK_DIR}/reconstruct-out/uv_map.png
    --normals ${WORK_DIR}/reconstruct-out/normals.png --out ${WORK_DIR}/fit-out ${tiny})
message(STATUS "${last_output}")
if(NOT last_output MATCHES "fit_predictions ok" OR NOT EXISTS ${WORK_DIR}/fit-out/mesh.obj
   OR NOT EXISTS ${WORK_DIR}/fit-out/params.safetensors)
  message(FATAL_ERROR "the fit_predictions example did not write its mesh and parameters:\n${last_output}")
endif()

# CPACK_PRE_BUILD_SCRIPTS (cmake/RillPackage.cmake): strips the debug information from the static
# libraries staged for the packages, as Debian's dh_strip does. CPACK_STRIP_FILES strips only
# executables and shared libraries; the build's -g1 line tables would otherwise make
# librill-client.a several times larger.
file(GLOB_RECURSE rill_static_libs "${CPACK_TEMPORARY_DIRECTORY}/*.a")
if(NOT rill_static_libs)
  message(FATAL_ERROR "strip-static-libs.cmake: no static library under ${CPACK_TEMPORARY_DIRECTORY}")
endif()
foreach(lib IN LISTS rill_static_libs)
  execute_process(COMMAND ${CPACK_STRIP_COMMAND} --strip-debug "${lib}" COMMAND_ERROR_IS_FATAL ANY)
endforeach()

include(GoogleTest)

# Custom targets for the sanitizer builds: `make test` builds only these in build/asan and
# build/tsan, and runs ctest there with -L asan / -L tsan.
add_custom_target(rill_asan_tests)
add_custom_target(rill_tsan_tests)

# rill_add_test(NAME name SOURCES a.cc b.cc LIBS lib... [LABELS asan tsan slow] [TIMEOUT s])
# Builds a GoogleTest binary and registers each of its tests with ctest. LABELS asan / tsan
# make the test part of the sanitizer runs of `make test`.
function(rill_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set(labels ${T_NAME} ${T_LABELS})
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 120
    PROPERTIES TIMEOUT ${T_TIMEOUT})
  # gtest_discover_tests flattens list-valued PROPERTIES (LABELS "a;b" would keep only "a"), so
  # the labels are set by a ctest include file that runs after the discovered tests are added.
  set(labels_file ${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_labels.cmake)
  file(WRITE ${labels_file}
       "if(DEFINED ${T_NAME}_TESTS)\n"
       "  set_tests_properties(\${${T_NAME}_TESTS} PROPERTIES LABELS \"${labels}\")\n"
       "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${labels_file})
  if("asan" IN_LIST T_LABELS)
    add_dependencies(rill_asan_tests ${T_NAME})
  endif()
  if("tsan" IN_LIST T_LABELS)
    add_dependencies(rill_tsan_tests ${T_NAME})
  endif()
endfunction()

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
    PROPERTIES LABELS "${labels}" TIMEOUT ${T_TIMEOUT})
  if("asan" IN_LIST T_LABELS)
    add_dependencies(rill_asan_tests ${T_NAME})
  endif()
  if("tsan" IN_LIST T_LABELS)
    add_dependencies(rill_tsan_tests ${T_NAME})
  endif()
endfunction()

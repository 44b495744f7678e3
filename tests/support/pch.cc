// The host of the tests' shared precompiled header (tests/CMakeLists.txt, rill_test_pch).

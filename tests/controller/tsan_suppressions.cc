// ThreadSanitizer suppressions for this test binary. Debian's gRPC, Abseil and protobuf are not
// built with -fsanitize=thread, so TSan cannot see their synchronisation and reports races
// inside them (and in our frames that call them) that are not races. Reports whose stacks
// run through those libraries are suppressed; races wholly in Rill code are still reported.
extern "C" const char* __tsan_default_suppressions() {
  return "race:libgrpc.so\n"
         "race:libgrpc++.so\n"
         "race:libgpr.so\n"
         "race:libabsl_\n"
         "race:libprotobuf.so\n"
         "race:grpc_core::\n"
         "race:grpc::internal::\n"
         "deadlock:libgrpc.so\n"
         "deadlock:libabsl_\n";
}

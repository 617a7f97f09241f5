// A planted layering violation: the engine may not use gRPC. layering_selftest
// runs the include check on this folder and expects it to name this file.
#include "grpcpp/grpcpp.h"

# Every example a user reads (```cpp blocks in README files and, fenced the same way, in the
# comments of public headers) is compiled: a build-time tool extracts them into one source,
# each block the body of its own function. A new example only needs its file listed here.
add_executable(doc_examples_extract ${CMAKE_CURRENT_SOURCE_DIR}/doc_examples/extract.cpp)
tracecast_target_options(doc_examples_extract)
set(TRACECAST_DOC_EXAMPLE_FILES
  ${PROJECT_SOURCE_DIR}/README.md
  ${PROJECT_SOURCE_DIR}/encode/README.md
  ${PROJECT_SOURCE_DIR}/core/include/tracecast/gateway.h)
set(doc_examples_cpp ${CMAKE_CURRENT_BINARY_DIR}/doc_examples.cpp)
add_custom_command(OUTPUT ${doc_examples_cpp}
  COMMAND doc_examples_extract ${doc_examples_cpp} ${TRACECAST_DOC_EXAMPLE_FILES}
  DEPENDS doc_examples_extract ${TRACECAST_DOC_EXAMPLE_FILES}
  COMMENT "Extracting the documentation's code examples"
  VERBATIM)
add_executable(doc_examples ${doc_examples_cpp})
target_include_directories(doc_examples PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/doc_examples)
target_link_libraries(doc_examples PRIVATE tracecast::tracecast)
tracecast_target_options(doc_examples)
# Compiling is the test; running checks the extraction found the examples.
add_test(NAME doc_examples COMMAND doc_examples)
# An example may end on a value the reader goes on to use (`std::string_view body = ...`).
target_compile_options(doc_examples PRIVATE -Wno-unused-variable -Wno-unused-but-set-variable)

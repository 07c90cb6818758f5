# install() + find_package(tracecast) from a consumer project. Skipped in sanitizer builds
# (the consumer is built without the sanitizer runtime).
if(NOT TRACECAST_SANITIZE)
  add_test(NAME install_consumer_test
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install_test.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(install_consumer_test PROPERTIES LABELS "integration;no_sanitizer" TIMEOUT 300)
endif()

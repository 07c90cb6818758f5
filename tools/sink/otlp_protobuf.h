// OTLP/HTTP protobuf bodies for tracecast-sink: an ExportTraceServiceRequest in the protobuf
// wire format is checked and rewritten as the equivalent OTLP/JSON document, which the JSON
// reader (otlp_reader.h) then validates, counts and renders exactly as it does a JSON body:
// one set of rules for both encodings, spans counted the same way.
//
// Wire checks (opentelemetry-proto trace/v1, common/v1, resource/v1, collector/trace/v1):
// every tag, varint and length in bounds; the wire type each known field's type requires;
// strings valid UTF-8 (proto3); no groups; nesting at most 32 messages deep. Unknown fields
// are skipped (the protobuf rule, as JSON receivers ignore unknown keys). A singular field
// given twice keeps the last value; of AnyValue's oneof, the last member given wins.
//
// Internal to tracecast-sink (and its tests); not a public tracecast header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tracecast::sink {

// Rewrites `body` as OTLP/JSON into `out` (cleared first). Returns false with `error` naming
// the field path and the reason ("resourceSpans[0].scopeSpans[0].spans[2].name: invalid UTF-8")
// when the body is not a well-formed ExportTraceServiceRequest. Not thread-safe per `out`.
[[nodiscard]] bool protobuf_to_json(std::string_view body, std::string& out, std::string& error);

// Response bodies in the protobuf encoding. ExportTraceServiceResponse: empty for full
// success, else partial_success { rejected_spans, error_message }.
[[nodiscard]] std::string protobuf_export_response(std::uint64_t rejected, std::string_view message);
// google.rpc.Status { code = 1, message = 2 }: the body of an error answer.
[[nodiscard]] std::string protobuf_rpc_status(int code, std::string_view message);

}  // namespace tracecast::sink

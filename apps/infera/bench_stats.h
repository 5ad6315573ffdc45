// Pure helpers of `infera bench-serve`: percentiles, an SSE byte-stream splitter and the reading of
// one OpenAI streaming chunk. No I/O, so the unit tests drive them directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace infera::cli::bench {

// numpy.percentile's default ("linear"): the value at rank q/100 * (n - 1) of the sorted values,
// interpolated between its two neighbours. q in [0, 100]; 0 for no values.
double percentile(std::vector<double> values, double q);
double mean(const std::vector<double>& values);  // 0 for no values

// Splits a text/event-stream into events as the bytes arrive, however they are cut. An event's
// data lines ("data: x" or "data:x", one leading space dropped) are joined with '\n' and handed out
// at the blank line that ends it; other fields and ":" comments are ignored; CRLF and CR work too.
class SseSplitter {
 public:
  // Appends bytes; the data of every event completed by them goes to *events.
  void feed(std::string_view bytes, std::vector<std::string>* events);
  // End of stream: an event whose blank line never came is handed out too.
  void finish(std::vector<std::string>* events);

 private:
  void line(std::string_view l, std::vector<std::string>* events);
  std::string buf_, data_;
  bool has_data_ = false, last_cr_ = false;
};

// What one streamed chunk (`data:` payload) of /v1/completions or /v1/chat/completions says.
struct StreamChunk {
  bool done = false;     // "[DONE]"
  bool content = false;  // a choice carries generated text: text, delta.content or delta.reasoning_content
  std::optional<int64_t> prompt_tokens, completion_tokens;  // from a non-null "usage"
  std::string error;     // an error event's message, or why the payload is not a chunk
};
StreamChunk parse_stream_chunk(std::string_view data);

}  // namespace infera::cli::bench

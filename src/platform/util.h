// Small platform helpers: ids (base58 of random bytes), endpoint labels (spec §11.1), hashes,
// timestamps and money. Pure functions except random_id().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace infera::platform {

// Bitcoin-alphabet base58 of raw bytes (leading zero bytes become '1').
std::string base58_encode(std::string_view bytes);
// base58 of 32 random bytes (43-44 chars): ids of deployments, jobs, accounts, markets, nodes.
std::string random_id();
// `n` random bytes from the OS CSPRNG.
std::string random_bytes(size_t n);
// Base62 string of `n` characters from the CSPRNG (API key secrets).
std::string random_base62(size_t n);

std::string sha256_hex(std::string_view data);
std::string sha512_raw(std::string_view data);
// Hn(s): the first n characters of base58(SHA-512(s)).
std::string hash_prefix(std::string_view s, size_t n);
// deployment_hash = H45("<deployment_id>:<vault>").
std::string deployment_hash(std::string_view deployment_id, std::string_view vault);
// label(op) = lowercase(H44("<op_id>:<port_or_0>:<deployment_hash>")).
std::string deployment_label(std::string_view op_id, int port, std::string_view dep_hash);
// job_label = lowercase(H44("<op_index>:<port>:<job_id>")).
std::string job_label(int op_index, int port, std::string_view job_id);
// Constant-time equality of two strings of any length.
bool constant_time_equal(std::string_view a, std::string_view b);

// Milliseconds since the Unix epoch <-> "2025-12-08T11:43:20.000Z".
std::string iso8601_ms(int64_t unix_ms);
// Parses ISO-8601 UTC ("2025-12-08", "2025-12-08T11:43:20Z", with optional .mmm); -1 if malformed.
int64_t parse_iso8601_ms(std::string_view text);

// Integer micro-dollars.
using Micros = int64_t;
constexpr Micros kMicrosPerDollar = 1'000'000;
// a * b / c rounded half up (a, b, c >= 0; 128-bit intermediate).
int64_t mul_div_round(int64_t a, int64_t b, int64_t c);
// Cost of running at `micros_per_hour` for `seconds`, rounded half up.
Micros cost_for_seconds(Micros micros_per_hour, int64_t seconds);
// "$0.291" (decimals 3, half up) / "$0.00" (decimals 2, rounded down).
std::string format_usd(Micros m, int decimals, bool round_down = false);
// Micro-dollars as a JSON-friendly double (exact for amounts below 2^53 micro-dollars).
double usd(Micros m);
// Parses a dollar amount ("10", "0.29", "$1.5") into micro-dollars; -1 on error.
Micros parse_usd(std::string_view text);

}  // namespace infera::platform

#include "platform/util.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <vector>

#include <fmt/format.h>

#include "base/check.h"

namespace infera::platform {

namespace {
constexpr char kBase58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

std::string base58_encode(std::string_view bytes) {
  size_t zeros = 0;
  while (zeros < bytes.size() && bytes[zeros] == 0) ++zeros;
  // Repeated division of the big-endian number by 58; digits[] is little-endian base 58.
  std::vector<uint8_t> digits;
  digits.reserve(bytes.size() * 138 / 100 + 1);
  for (size_t i = zeros; i < bytes.size(); ++i) {
    int carry = static_cast<uint8_t>(bytes[i]);
    for (auto& d : digits) {
      carry += d * 256;
      d = static_cast<uint8_t>(carry % 58);
      carry /= 58;
    }
    while (carry > 0) {
      digits.push_back(static_cast<uint8_t>(carry % 58));
      carry /= 58;
    }
  }
  std::string out(zeros, '1');
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(kBase58[*it]);
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) == 1);
  return out;
}

std::string random_id() { return base58_encode(random_bytes(32)); }

std::string random_base62(size_t n) {
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    for (unsigned char b : random_bytes(n)) {
      if (b >= 248) continue;  // 248 = 4 * 62: rejection keeps the choice uniform
      out.push_back(kBase62[b % 62]);
      if (out.size() == n) break;
    }
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::string out;
  for (unsigned char c : md) out += fmt::format("{:02x}", c);
  return out;
}

std::string sha512_raw(std::string_view data) {
  unsigned char md[SHA512_DIGEST_LENGTH];
  SHA512(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<const char*>(md), sizeof(md));
}

std::string hash_prefix(std::string_view s, size_t n) { return base58_encode(sha512_raw(s)).substr(0, n); }

std::string deployment_hash(std::string_view deployment_id, std::string_view vault) {
  return hash_prefix(fmt::format("{}:{}", deployment_id, vault), 45);
}

std::string deployment_label(std::string_view op_id, int port, std::string_view dep_hash) {
  return to_lower(hash_prefix(fmt::format("{}:{}:{}", op_id, port, dep_hash), 44));
}

std::string job_label(int op_index, int port, std::string_view job_id) {
  return to_lower(hash_prefix(fmt::format("{}:{}:{}", op_index, port, job_id), 44));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned>(a[i] ^ b[i]);
  return diff == 0;
}

std::string iso8601_ms(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  int ms = static_cast<int>(unix_ms % 1000);
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int64_t parse_iso8601_ms(std::string_view t) {
  auto num = [&](size_t pos, size_t len, int& out) {
    if (pos + len > t.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(t[i]))) return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y, mo, d, h = 0, mi = 0, s = 0, ms = 0;
  if (!num(0, 4, y) || t.size() < 10 || t[4] != '-' || !num(5, 2, mo) || t[7] != '-' || !num(8, 2, d)) return -1;
  size_t pos = 10;
  if (pos < t.size()) {
    if (t[pos] != 'T' && t[pos] != ' ') return -1;
    if (!num(pos + 1, 2, h) || t.size() < pos + 6 || t[pos + 3] != ':' || !num(pos + 4, 2, mi)) return -1;
    pos += 6;
    if (pos < t.size() && t[pos] == ':') {
      if (!num(pos + 1, 2, s)) return -1;
      pos += 3;
      if (pos < t.size() && t[pos] == '.') {
        size_t start = ++pos;
        while (pos < t.size() && std::isdigit(static_cast<unsigned char>(t[pos]))) ++pos;
        if (pos == start) return -1;
        std::string frac(t.substr(start, pos - start));
        frac.resize(3, '0');
        ms = std::stoi(frac.substr(0, 3));
      }
    }
    if (pos < t.size() && t[pos] == 'Z') ++pos;
    if (pos != t.size()) return -1;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return -1;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

int64_t mul_div_round(int64_t a, int64_t b, int64_t c) {
  CHECK(a >= 0 && b >= 0 && c > 0);
  __int128 p = static_cast<__int128>(a) * b;
  return static_cast<int64_t>((p + c / 2) / c);
}

Micros cost_for_seconds(Micros micros_per_hour, int64_t seconds) {
  return mul_div_round(micros_per_hour, seconds < 0 ? 0 : seconds, 3600);
}

std::string format_usd(Micros m, int decimals, bool round_down) {
  CHECK(decimals >= 0 && decimals <= 6);
  int64_t unit = 1;
  for (int i = decimals; i < 6; ++i) unit *= 10;
  const bool neg = m < 0;
  int64_t a = neg ? -m : m;
  int64_t q = round_down ? a / unit : (a + unit / 2) / unit;
  int64_t scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  std::string out = fmt::format("{}${}", neg ? "-" : "", q / scale);
  if (decimals > 0) out += fmt::format(".{:0{}}", q % scale, decimals);
  return out;
}

double usd(Micros m) { return static_cast<double>(m) / kMicrosPerDollar; }

Micros parse_usd(std::string_view t) {
  if (!t.empty() && t[0] == '$') t.remove_prefix(1);
  if (t.empty()) return -1;
  int64_t whole = 0, frac = 0;
  int frac_digits = 0;
  bool dot = false, any = false;
  for (char c : t) {
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    any = true;
    if (dot) {
      if (frac_digits == 6) return -1;
      frac = frac * 10 + (c - '0');
      ++frac_digits;
    } else {
      whole = whole * 10 + (c - '0');
      if (whole > 1'000'000'000) return -1;
    }
  }
  if (!any) return -1;
  while (frac_digits < 6) {
    frac *= 10;
    ++frac_digits;
  }
  return whole * kMicrosPerDollar + frac;
}

}  // namespace infera::platform

// Five-field cron schedules for the SCHEDULED strategy, evaluated in UTC.
//
//   Result<CronSchedule> s = parse_cron("30 9 * * MON-FRI");
//   if (!s) return s.status();
//   std::optional<int64_t> t = next_cron_time(*s, now_unix_s);  // nullopt: never fires (soon)
//
// Syntax per field: `*`, numbers, ranges `a-b`, comma lists, steps `*/n`, `a-b/n` and `a/n` (= a to
// the field's maximum, step n). Month names JAN-DEC and weekday names SUN-SAT are accepted in their
// fields, case-insensitively. Day of week takes 0-7 with both 0 and 7 meaning Sunday (so `a/n` and
// `*/n` in that field run up to 7). Not supported: `?`, `L`, `W`, `#`, `@daily`-style macros.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace infera::platform {

// Plain data: bit i set means value i is allowed. A parsed schedule has at least one bit set in
// every field.
struct CronSchedule {
  std::bitset<60> minute;
  std::bitset<24> hour;
  std::bitset<32> day_of_month;  // 1..31; bit 0 unused
  std::bitset<13> month;         // 1..12; bit 0 unused
  std::bitset<7> day_of_week;    // 0..6, Sunday = 0
  bool dom_restricted = false;   // the day-of-month field text was not exactly "*"
  bool dow_restricted = false;   // the day-of-week field text was not exactly "*"
};

// Parses "minute hour day-of-month month day-of-week": exactly 5 whitespace-separated fields.
// Errors are one line naming the field and the offending text, e.g.
//   schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 3
//   schedule: minute value 61 out of range 0-59
//   schedule: bad step '*/0' in hour
//   schedule: bad range '5-3' in hour
//   schedule: bad value 'FOO' in month
//   schedule: empty list item in minute '1,,2'
// A day-of-month that no month has (e.g. "30" in February only) parses; it simply never fires.
Result<CronSchedule> parse_cron(std::string_view expr);

// The first firing time strictly after `after_unix_s` (Unix seconds, UTC), a multiple of 60.
// Vixie semantics: when both day-of-month and day-of-week are restricted, a day matches if either
// matches; otherwise both must (an unrestricted field matches every day). Returns std::nullopt if
// nothing fires within the next 5 * 366 days, or if the answer would not fit in int64_t.
std::optional<int64_t> next_cron_time(const CronSchedule& s, int64_t after_unix_s);

// One deterministic line of English for the dashboard, e.g. "every hour at minute 0",
// "at 09:30 every day", "every 15 minutes on Monday through Friday", or the generic
// "at minutes 0 and 30 past hours 9-17 on day 1 of the month in January". Describes the parsed
// sets, so equivalent expressions get the same text. For an invalid expression, returns
// parse_cron's error message.
std::string describe_cron(std::string_view expr);

}  // namespace infera::platform

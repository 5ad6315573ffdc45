#include "platform/cron.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <vector>

namespace infera::platform {
namespace {

constexpr std::string_view kFieldList = "minute hour day-of-month month day-of-week";
constexpr std::string_view kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                            "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::string_view kWeekdayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
constexpr std::string_view kMonthWords[] = {"January",   "February", "March",    "April",
                                            "May",       "June",     "July",     "August",
                                            "September", "October",  "November", "December"};
constexpr std::string_view kWeekdayWords[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                              "Thursday", "Friday", "Saturday"};

// How far next_cron_time looks ahead, in days.
constexpr int64_t kSearchDays = 5 * 366;

// One field's grammar: numbers lo..hi, plus optional three-letter names for values
// name_base, name_base + 1, ...
struct FieldSpec {
  std::string_view name;
  int lo;
  int hi;
  const std::string_view* names = nullptr;
  int n_names = 0;
  int name_base = 0;
};

constexpr FieldSpec kMinuteSpec{"minute", 0, 59};
constexpr FieldSpec kHourSpec{"hour", 0, 23};
constexpr FieldSpec kDomSpec{"day-of-month", 1, 31};
constexpr FieldSpec kMonthSpec{"month", 1, 12, kMonthNames, 12, 1};
constexpr FieldSpec kDowSpec{"day-of-week", 0, 7, kWeekdayNames, 7, 0};  // 7 folds onto 0

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

char to_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  }
  return true;
}

// A single number or name of `spec`'s field.
Result<int> parse_value(std::string_view token, const FieldSpec& spec) {
  if (all_digits(token)) {
    int v = 0;
    auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc() || v < spec.lo || v > spec.hi) {
      return error("schedule: {} value {} out of range {}-{}", spec.name, token, spec.lo, spec.hi);
    }
    return v;
  }
  for (int i = 0; i < spec.n_names; ++i) {
    if (equals_ignore_case(token, spec.names[i])) return spec.name_base + i;
  }
  return error("schedule: bad value '{}' in {}", token, spec.name);
}

// One comma-separated item: `*`, `v`, `a-b`, optionally followed by `/step`.
Status parse_item(std::string_view item, const FieldSpec& spec, uint64_t* bits) {
  const size_t slash = item.find('/');
  const std::string_view base = item.substr(0, slash);
  const bool has_step = slash != std::string_view::npos;
  int step = 1;
  if (has_step) {
    const std::string_view step_text = item.substr(slash + 1);
    bool ok = !base.empty() && all_digits(step_text);
    if (ok) {
      auto [ptr, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      ok = ec == std::errc() && step > 0;
    }
    if (!ok) return error("schedule: bad step '{}' in {}", item, spec.name);
  }
  int first = spec.lo;
  int last = spec.hi;
  if (base != "*") {
    const size_t dash = base.find('-');
    if (dash == std::string_view::npos) {
      INFERA_ASSIGN_OR_RETURN(first, parse_value(base, spec));
      last = has_step ? spec.hi : first;
    } else {
      const std::string_view lhs = base.substr(0, dash);
      const std::string_view rhs = base.substr(dash + 1);
      if (lhs.empty() || rhs.empty() || lhs == "*" || rhs == "*" ||
          rhs.find('-') != std::string_view::npos) {
        return error("schedule: bad range '{}' in {}", base, spec.name);
      }
      INFERA_ASSIGN_OR_RETURN(first, parse_value(lhs, spec));
      INFERA_ASSIGN_OR_RETURN(last, parse_value(rhs, spec));
      if (first > last) return error("schedule: bad range '{}' in {}", base, spec.name);
    }
  }
  for (int64_t v = first; v <= last; v += step) *bits |= uint64_t{1} << v;
  return Status::ok();
}

// A whole field: comma-separated items. Sets bits lo..hi of `*bits`.
Status parse_field(std::string_view text, const FieldSpec& spec, uint64_t* bits) {
  *bits = 0;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma - start);
    if (item.empty()) return error("schedule: empty list item in {} '{}'", spec.name, text);
    INFERA_RETURN_IF_ERROR(parse_item(item, spec, bits));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::ok();
}

// ---- civil-date arithmetic (proleptic Gregorian, UTC) ----

struct CivilDate {
  int64_t year;
  int month;  // 1..12
  int day;    // 1..31
};

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

// Days since 1970-01-01 to a civil date (H. Hinnant's civil_from_days).
CivilDate civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<uint32_t>(z - era * 146097);                    // [0, 146096]
  const uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const uint32_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const auto day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const auto month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int64_t year = static_cast<int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

bool is_leap_year(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int days_in_month(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (month == 2 && is_leap_year(year)) ? 29 : kDays[month - 1];
}

// 0 = Sunday; 1970-01-01 was a Thursday.
int weekday_from_days(int64_t days) { return static_cast<int>(floor_mod(days + 4, 7)); }

bool day_matches(const CronSchedule& s, int day_of_month, int weekday) {
  const bool dom = s.day_of_month[day_of_month];
  const bool dow = s.day_of_week[weekday];
  if (s.dom_restricted && s.dow_restricted) return dom || dow;
  return dom && dow;
}

// ---- describe_cron ----

template <size_t N>
std::vector<int> set_values(const std::bitset<N>& bits) {
  std::vector<int> out;
  for (size_t i = 0; i < N; ++i) {
    if (bits[i]) out.push_back(static_cast<int>(i));
  }
  return out;
}

// "a", "a and b", "a, b and c".
std::string join_english(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += (i + 1 == items.size()) ? " and " : ", ";
    out += items[i];
  }
  return out;
}

// Sorted values as an English list; runs of three or more become "first<range_sep>last".
template <typename Label>
std::string render_values(const std::vector<int>& vals, Label label, std::string_view range_sep) {
  std::vector<std::string> items;
  for (size_t i = 0; i < vals.size();) {
    size_t j = i;
    while (j + 1 < vals.size() && vals[j + 1] == vals[j] + 1) ++j;
    if (j - i >= 2) {
      items.push_back(fmt::format("{}{}{}", label(vals[i]), range_sep, label(vals[j])));
    } else {
      for (size_t k = i; k <= j; ++k) items.push_back(label(vals[k]));
    }
    i = j + 1;
  }
  return join_english(items);
}

std::string render_numbers(const std::vector<int>& vals) {
  return render_values(
      vals, [](int v) { return std::to_string(v); }, "-");
}

// k >= 2 when `vals` is exactly lo, lo + k, lo + 2k, ... up to hi; 0 otherwise.
int step_from_lo(const std::vector<int>& vals, int lo, int hi) {
  if (vals.size() < 2 || vals[0] != lo) return 0;
  const int k = vals[1] - vals[0];
  if (k < 2) return 0;
  for (size_t i = 1; i < vals.size(); ++i) {
    if (vals[i] - vals[i - 1] != k) return 0;
  }
  return vals.back() + k > hi ? k : 0;
}

std::string plural(size_t n, std::string_view word) {
  return fmt::format("{}{}", word, n == 1 ? "" : "s");
}

std::string describe_time(const std::vector<int>& minutes, const std::vector<int>& hours) {
  const bool all_minutes = minutes.size() == 60;
  const bool all_hours = hours.size() == 24;
  const int minute_step = step_from_lo(minutes, 0, 59);
  const int hour_step = step_from_lo(hours, 0, 23);
  const std::string hours_text =
      fmt::format("{} {}", plural(hours.size(), "hour"), render_numbers(hours));
  if (all_minutes) return all_hours ? "every minute" : "every minute during " + hours_text;
  if (minutes.size() == 1) {
    if (all_hours) return fmt::format("every hour at minute {}", minutes[0]);
    if (hour_step > 0) return fmt::format("every {} hours at minute {}", hour_step, minutes[0]);
  }
  if (!all_hours && minutes.size() * hours.size() <= 4) {
    std::vector<std::string> times;
    for (int h : hours) {
      for (int m : minutes) times.push_back(fmt::format("{:02}:{:02}", h, m));
    }
    return "at " + join_english(times);
  }
  if (minute_step > 0) {
    const std::string every = fmt::format("every {} minutes", minute_step);
    return all_hours ? every : every + " during " + hours_text;
  }
  return fmt::format("at {} {} past {}", plural(minutes.size(), "minute"), render_numbers(minutes),
                     all_hours ? std::string("every hour") : hours_text);
}

}  // namespace

Result<CronSchedule> parse_cron(std::string_view expr) {
  std::vector<std::string_view> fields;
  for (size_t i = 0; i < expr.size();) {
    if (is_space(expr[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < expr.size() && !is_space(expr[j])) ++j;
    fields.push_back(expr.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5) {
    return error("schedule: expected 5 fields ({}), got {}", kFieldList, fields.size());
  }
  uint64_t minute = 0, hour = 0, dom = 0, month = 0, dow = 0;
  INFERA_RETURN_IF_ERROR(parse_field(fields[0], kMinuteSpec, &minute));
  INFERA_RETURN_IF_ERROR(parse_field(fields[1], kHourSpec, &hour));
  INFERA_RETURN_IF_ERROR(parse_field(fields[2], kDomSpec, &dom));
  INFERA_RETURN_IF_ERROR(parse_field(fields[3], kMonthSpec, &month));
  INFERA_RETURN_IF_ERROR(parse_field(fields[4], kDowSpec, &dow));
  if (dow & (uint64_t{1} << 7)) dow = (dow | 1) & ~(uint64_t{1} << 7);

  CronSchedule s;
  s.minute = std::bitset<60>(minute);
  s.hour = std::bitset<24>(hour);
  s.day_of_month = std::bitset<32>(dom);
  s.month = std::bitset<13>(month);
  s.day_of_week = std::bitset<7>(dow);
  s.dom_restricted = fields[2] != "*";
  s.dow_restricted = fields[4] != "*";
  return s;
}

std::optional<int64_t> next_cron_time(const CronSchedule& s, int64_t after_unix_s) {
  constexpr int64_t kMaxMinute = std::numeric_limits<int64_t>::max() / 60;
  const int64_t first_minute = floor_div(after_unix_s, 60) + 1;  // minutes since the epoch
  int64_t day = floor_div(first_minute, 1440);
  const int64_t end_day = day + kSearchDays;
  const auto minute_of_day = static_cast<int>(floor_mod(first_minute, 1440));
  int hour_from = minute_of_day / 60;
  int minute_from = minute_of_day % 60;
  CivilDate date = civil_from_days(day);

  auto next_month = [&date] {
    date.day = 1;
    if (++date.month > 12) {
      date.month = 1;
      ++date.year;
    }
  };
  while (day < end_day) {
    if (!s.month[date.month]) {
      day += days_in_month(date.year, date.month) - date.day + 1;
      next_month();
      hour_from = minute_from = 0;
      continue;
    }
    if (day_matches(s, date.day, weekday_from_days(day))) {
      for (int h = hour_from; h < 24; ++h) {
        if (!s.hour[h]) continue;
        for (int m = (h == hour_from ? minute_from : 0); m < 60; ++m) {
          if (!s.minute[m]) continue;
          const int64_t found = day * 1440 + h * 60 + m;
          if (found > kMaxMinute) return std::nullopt;
          return found * 60;
        }
      }
    }
    ++day;
    if (++date.day > days_in_month(date.year, date.month)) next_month();
    hour_from = minute_from = 0;
  }
  return std::nullopt;
}

std::string describe_cron(std::string_view expr) {
  Result<CronSchedule> parsed = parse_cron(expr);
  if (!parsed) return parsed.error();
  const CronSchedule& s = *parsed;

  std::string out = describe_time(set_values(s.minute), set_values(s.hour));
  std::vector<std::string> day_parts;
  if (s.dom_restricted) {
    std::vector<int> days;
    for (int d : set_values(s.day_of_month)) {
      if (d >= 1) days.push_back(d);
    }
    day_parts.push_back(
        fmt::format("{} {} of the month", plural(days.size(), "day"), render_numbers(days)));
  }
  if (s.dow_restricted) {
    day_parts.push_back(render_values(
        set_values(s.day_of_week), [](int v) { return std::string(kWeekdayWords[v]); },
        " through "));
  }
  if (day_parts.empty()) {
    if (out.rfind("at ", 0) == 0 && !s.hour.all()) out += " every day";
  } else {
    out += " on " + day_parts[0];
    if (day_parts.size() == 2) out += " or on " + day_parts[1];
  }
  std::vector<int> months;
  for (int m : set_values(s.month)) {
    if (m >= 1) months.push_back(m);
  }
  if (months.size() != 12) {
    out += " in " + render_values(
                        months, [](int v) { return std::string(kMonthWords[v - 1]); }, " through ");
  }
  return out;
}

}  // namespace infera::platform

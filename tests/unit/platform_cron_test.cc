// Cron schedules: parsing (values, names, ranges, lists, steps, exact errors), next firing time in
// UTC against hand-checked dates (expected values from Python's datetime in UTC) and against a
// minute-by-minute gmtime_r scan, and the dashboard descriptions.
#include <gtest/gtest.h>

#include <ctime>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "platform/cron.h"

namespace infera::platform {
namespace {

template <size_t N>
std::bitset<N> bits(std::initializer_list<int> values) {
  std::bitset<N> b;
  for (int v : values) b.set(static_cast<size_t>(v));
  return b;
}

template <size_t N>
std::bitset<N> bit_range(int first, int last, int step = 1) {
  std::bitset<N> b;
  for (int v = first; v <= last; v += step) b.set(static_cast<size_t>(v));
  return b;
}

CronSchedule parse_ok(std::string_view expr) {
  Result<CronSchedule> r = parse_cron(expr);
  EXPECT_TRUE(r.ok()) << expr << ": " << r.error();
  return r.ok() ? *r : CronSchedule{};
}

// ---- parsing ----

TEST(CronParse, AllWildcards) {
  const CronSchedule s = parse_ok("* * * * *");
  EXPECT_TRUE(s.minute.all());
  EXPECT_TRUE(s.hour.all());
  EXPECT_EQ(s.day_of_month, bit_range<32>(1, 31));
  EXPECT_EQ(s.month, bit_range<13>(1, 12));
  EXPECT_TRUE(s.day_of_week.all());
  EXPECT_FALSE(s.dom_restricted);
  EXPECT_FALSE(s.dow_restricted);
}

TEST(CronParse, NumbersRangesAndLists) {
  const CronSchedule s = parse_ok("5,10-12,59 0-3,23 1,15,31 2-4 1-5");
  EXPECT_EQ(s.minute, bits<60>({5, 10, 11, 12, 59}));
  EXPECT_EQ(s.hour, bits<24>({0, 1, 2, 3, 23}));
  EXPECT_EQ(s.day_of_month, bits<32>({1, 15, 31}));
  EXPECT_EQ(s.month, bits<13>({2, 3, 4}));
  EXPECT_EQ(s.day_of_week, bits<7>({1, 2, 3, 4, 5}));
  EXPECT_TRUE(s.dom_restricted);
  EXPECT_TRUE(s.dow_restricted);
}

TEST(CronParse, Steps) {
  const CronSchedule s = parse_ok("*/15 1-10/3 5/10 */5 */2");
  EXPECT_EQ(s.minute, bits<60>({0, 15, 30, 45}));
  EXPECT_EQ(s.hour, bits<24>({1, 4, 7, 10}));
  EXPECT_EQ(s.day_of_month, bits<32>({5, 15, 25}));  // a/n runs to the field's maximum
  EXPECT_EQ(s.month, bits<13>({1, 6, 11}));
  EXPECT_EQ(s.day_of_week, bits<7>({0, 2, 4, 6}));
  EXPECT_EQ(parse_ok("0/20 * * * *").minute, bits<60>({0, 20, 40}));
  EXPECT_EQ(parse_ok("58/1 * * * *").minute, bits<60>({58, 59}));
  EXPECT_EQ(parse_ok("*/100 * * * *").minute, bits<60>({0}));  // step past the end: first only
  EXPECT_EQ(parse_ok("1-10/3,30-40/5 * * * *").minute, bits<60>({1, 4, 7, 10, 30, 35, 40}));
}

TEST(CronParse, MonthAndWeekdayNamesAnyCase) {
  const CronSchedule s = parse_ok("0 0 * JAN,mar,Dec mon-FRI");
  EXPECT_EQ(s.month, bits<13>({1, 3, 12}));
  EXPECT_EQ(s.day_of_week, bits<7>({1, 2, 3, 4, 5}));
  EXPECT_EQ(parse_ok("0 0 * feb-apr/2 sun,sat").month, bits<13>({2, 4}));
  EXPECT_EQ(parse_ok("0 0 * * sun,sat").day_of_week, bits<7>({0, 6}));
  EXPECT_EQ(parse_ok("0 0 * jan-12 *").month, bit_range<13>(1, 12));  // names mix with numbers
  EXPECT_EQ(parse_ok("0 0 * * TUE/2").day_of_week, bits<7>({2, 4, 6}));
}

TEST(CronParse, SevenIsSunday) {
  EXPECT_EQ(parse_ok("0 0 * * 7").day_of_week, bits<7>({0}));
  EXPECT_EQ(parse_ok("0 0 * * 0,7").day_of_week, bits<7>({0}));
  EXPECT_EQ(parse_ok("0 0 * * 5-7").day_of_week, bits<7>({0, 5, 6}));
  EXPECT_EQ(parse_ok("0 0 * * SAT-7").day_of_week, bits<7>({0, 6}));
  EXPECT_EQ(parse_ok("0 0 * * 1/2").day_of_week, bits<7>({0, 1, 3, 5}));  // 1,3,5,7
  EXPECT_EQ(parse_ok("0 0 * * */7").day_of_week, bits<7>({0}));           // 0,7
  EXPECT_TRUE(parse_ok("0 0 * * 0-7").day_of_week.all());
}

TEST(CronParse, RestrictedFlagsFollowTheLiteralStar) {
  const CronSchedule a = parse_ok("0 0 1 * *");
  EXPECT_TRUE(a.dom_restricted);
  EXPECT_FALSE(a.dow_restricted);
  const CronSchedule b = parse_ok("0 0 * * 1");
  EXPECT_FALSE(b.dom_restricted);
  EXPECT_TRUE(b.dow_restricted);
  // Anything but a bare "*" restricts, even when it allows every value.
  const CronSchedule c = parse_ok("0 0 */1 * 0-6");
  EXPECT_TRUE(c.dom_restricted);
  EXPECT_TRUE(c.dow_restricted);
  EXPECT_EQ(c.day_of_month, bit_range<32>(1, 31));
  EXPECT_TRUE(c.day_of_week.all());
}

TEST(CronParse, WhitespaceBetweenFields) {
  const CronSchedule s = parse_ok("  30\t9 \t *  *\n1-5  ");
  EXPECT_EQ(s.minute, bits<60>({30}));
  EXPECT_EQ(s.hour, bits<24>({9}));
  EXPECT_EQ(s.day_of_week, bits<7>({1, 2, 3, 4, 5}));
}

TEST(CronParse, ExtremesOfEachField) {
  const CronSchedule s = parse_ok("0,59 0,23 1,31 1,12 0,6");
  EXPECT_EQ(s.minute, bits<60>({0, 59}));
  EXPECT_EQ(s.hour, bits<24>({0, 23}));
  EXPECT_EQ(s.day_of_month, bits<32>({1, 31}));
  EXPECT_EQ(s.month, bits<13>({1, 12}));
  EXPECT_EQ(s.day_of_week, bits<7>({0, 6}));
  EXPECT_EQ(parse_ok("007 * * * *").minute, bits<60>({7}));
}

TEST(CronParse, ErrorsAreExact) {
  struct Case {
    const char* expr;
    const char* message;
  };
  const Case cases[] = {
      {"", "schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 0"},
      {"   ", "schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 0"},
      {"* * *", "schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 3"},
      {"0 0 * * * *",
       "schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
      {"@daily", "schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 1"},
      {"61 * * * *", "schedule: minute value 61 out of range 0-59"},
      {"60 * * * *", "schedule: minute value 60 out of range 0-59"},
      {"99999999999 * * * *", "schedule: minute value 99999999999 out of range 0-59"},
      {"* 24 * * *", "schedule: hour value 24 out of range 0-23"},
      {"* * 0 * *", "schedule: day-of-month value 0 out of range 1-31"},
      {"* * 32 * *", "schedule: day-of-month value 32 out of range 1-31"},
      {"* * * 0 *", "schedule: month value 0 out of range 1-12"},
      {"* * * 13 *", "schedule: month value 13 out of range 1-12"},
      {"* * * * 8", "schedule: day-of-week value 8 out of range 0-7"},
      {"0-60 * * * *", "schedule: minute value 60 out of range 0-59"},
      {"* 1-24/2 * * *", "schedule: hour value 24 out of range 0-23"},
      {"* */0 * * *", "schedule: bad step '*/0' in hour"},
      {"*/ * * * *", "schedule: bad step '*/' in minute"},
      {"*/x * * * *", "schedule: bad step '*/x' in minute"},
      {"*/-1 * * * *", "schedule: bad step '*/-1' in minute"},
      {"1-5/2/3 * * * *", "schedule: bad step '1-5/2/3' in minute"},
      {"/5 * * * *", "schedule: bad step '/5' in minute"},
      {"*/99999999999 * * * *", "schedule: bad step '*/99999999999' in minute"},
      {"* * * JAN-DEC/0 *", "schedule: bad step 'JAN-DEC/0' in month"},
      {"* 5-3 * * *", "schedule: bad range '5-3' in hour"},
      {"* * * * SAT-SUN", "schedule: bad range 'SAT-SUN' in day-of-week"},
      {"1- * * * *", "schedule: bad range '1-' in minute"},
      {"-1 * * * *", "schedule: bad range '-1' in minute"},
      {"1-2-3 * * * *", "schedule: bad range '1-2-3' in minute"},
      {"*-5 * * * *", "schedule: bad range '*-5' in minute"},
      {"a * * * *", "schedule: bad value 'a' in minute"},
      {"+5 * * * *", "schedule: bad value '+5' in minute"},
      {"* * ? * *", "schedule: bad value '?' in day-of-month"},
      {"* * L * *", "schedule: bad value 'L' in day-of-month"},
      {"* * * FOO *", "schedule: bad value 'FOO' in month"},
      {"* * * MON *", "schedule: bad value 'MON' in month"},
      {"* * * * JAN", "schedule: bad value 'JAN' in day-of-week"},
      {"* * * * MONDAY", "schedule: bad value 'MONDAY' in day-of-week"},
      {"* * * * 1#2", "schedule: bad value '1#2' in day-of-week"},
      {"JAN * * * *", "schedule: bad value 'JAN' in minute"},
      {"1,,2 * * * *", "schedule: empty list item in minute '1,,2'"},
      {"* 1, * * *", "schedule: empty list item in hour '1,'"},
      {"* * ,1 * *", "schedule: empty list item in day-of-month ',1'"},
  };
  for (const Case& c : cases) {
    Result<CronSchedule> r = parse_cron(c.expr);
    ASSERT_FALSE(r.ok()) << "'" << c.expr << "' parsed";
    EXPECT_EQ(r.error(), c.message) << "'" << c.expr << "'";
  }
}

TEST(CronParse, FirstErrorInFieldOrderWins) {
  Result<CronSchedule> r = parse_cron("61 24 0 13 8");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "schedule: minute value 61 out of range 0-59");
}

// ---- next_cron_time ----

constexpr int64_t kNever = std::numeric_limits<int64_t>::min();

struct NextCase {
  const char* expr;
  int64_t after;
  int64_t want;  // kNever: std::nullopt
};

void expect_next(const NextCase& c) {
  const CronSchedule s = parse_ok(c.expr);
  const std::optional<int64_t> got = next_cron_time(s, c.after);
  if (c.want == kNever) {
    EXPECT_FALSE(got.has_value()) << c.expr << " after " << c.after << " gave " << *got;
  } else {
    ASSERT_TRUE(got.has_value()) << c.expr << " after " << c.after;
    EXPECT_EQ(*got, c.want) << c.expr << " after " << c.after;
  }
}

TEST(CronNext, KnownDates) {
  const NextCase cases[] = {
      {"*/15 * * * *", 1704067650, 1704068100},     // 2024-01-01 00:07:30 -> 00:15
      {"* * * * *", 1704067259, 1704067260},        // 2024-01-01 00:00:59 -> 00:01
      {"30 9 * * *", 1718443799, 1718443800},       // 2024-06-15 09:29:59 -> 2024-06-15 09:30
      {"0 0 1 1 *", 1735689599, 1735689600},        // 2024-12-31 23:59:59 -> 2025-01-01 00:00
      {"0 0 31 * *", 1711929600, 1717113600},       // 2024-04-01 -> 2024-05-31 (April has no 31st)
      {"0 9 * * MON-FRI", 1718359200, 1718614800},  // Fri 2024-06-14 10:00 -> Mon 06-17 09:00
      {"0 0 * * SUN", 1725235200, 1725753600},      // Mon 2024-09-02 -> Sun 2024-09-08
      {"0 0 * * 7", 1725235200, 1725753600},        // 7 is Sunday too
      {"59 23 31 12 *", 1735689540, 1767225540},    // 2024-12-31 23:59 -> 2025-12-31 23:59
      {"5-10/5 1 1,15 JAN-MAR/2 *", 1705281000, 1709255100},  // 2024-01-15 01:10 -> 03-01 01:05
  };
  for (const NextCase& c : cases) expect_next(c);
}

TEST(CronNext, StrictlyAfterAFiringTime) {
  const NextCase cases[] = {
      {"0 * * * *", 1704067200, 1704070800},   // 2024-01-01 00:00:00 -> 01:00
      {"30 9 * * *", 1718443800, 1718530200},  // 2024-06-15 09:30:00 -> 2024-06-16 09:30
      {"* * * * *", 1704067200, 1704067260},   // 2024-01-01 00:00:00 -> 00:01
  };
  for (const NextCase& c : cases) expect_next(c);
}

TEST(CronNext, ChainVisitsEveryFiringInOrder) {
  const CronSchedule s = parse_ok("0,30 9 * * *");
  int64_t t = 1718409600;  // 2024-06-15 00:00
  const int64_t want[] = {1718443800 - 1800, 1718443800, 1718530200 - 1800, 1718530200};
  for (int64_t w : want) {
    const std::optional<int64_t> next = next_cron_time(s, t);
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(*next, w);
    t = *next;
  }
}

TEST(CronNext, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  const NextCase cases[] = {
      {"0 0 13 * FRI", 1725148800, 1725580800},  // Sun 2024-09-01 -> Fri 09-06 (weekday only)
      {"0 0 13 * FRI", 1725580800, 1726185600},  // Fri 09-06 -> Fri 09-13 (both)
      {"0 0 13 * FRI", 1726185600, 1726790400},  // Fri 09-13 -> Fri 09-20
      {"0 0 1 * MON", 1727827200, 1728259200},   // Wed 2024-10-02 -> Mon 10-07 (weekday only)
      {"0 0 1 * MON", 1730073600, 1730419200},   // Mon 10-28 -> Fri 11-01 (day of month only)
  };
  for (const NextCase& c : cases) expect_next(c);
}

TEST(CronNext, OnlyRestrictedFieldConstrainsWhenOtherIsStar) {
  // Day of month restricted, weekday "*": only the 15th, whatever its weekday.
  expect_next({"0 0 15 * *", 1725148800, 1726358400});  // 2024-09-01 -> Sun 2024-09-15
  // Day of week restricted, day of month "*": every Sunday.
  expect_next({"0 0 * * 0", 1726358400, 1726963200});  // Sun 09-15 -> Sun 09-22
}

TEST(CronNext, LeapYearsAndMonthEnds) {
  const NextCase cases[] = {
      {"0 12 29 2 *", 1740787200, 1835438400},  // 2025-03-01 -> 2028-02-29 12:00
      {"0 0 29 2 *", 1704067200, 1709164800},   // 2024-01-01 -> 2024-02-29
      {"0 0 29 2 *", 1709164800, 1835395200},   // 2024-02-29 00:00 -> 2028-02-29
      {"0 0 29 2 *", 928195200, 951782400},     // 1999-06-01 -> 2000-02-29 (2000 is leap)
      {"0 0 * 2 *", 4107456000, 4136659200},    // 2100-02-28 -> 2101-02-01 (2100 is not leap)
  };
  for (const NextCase& c : cases) expect_next(c);
}

TEST(CronNext, BeforeTheEpoch) {
  expect_next({"0 0 1 1 *", -31536001, -31536000});  // 1968-12-31 23:59:59 -> 1969-01-01
  expect_next({"0 0 1 1 *", -1, 0});                 // 1969-12-31 23:59:59 -> 1970-01-01
  expect_next({"* * * * *", -61, -60});
  expect_next({"* * * * *", -60, 0});
}

TEST(CronNext, NeverFiresWithinFiveYears) {
  const NextCase cases[] = {
      {"0 0 30 2 *", 1704067200, kNever},
      {"0 0 31 4,6,9,11 *", 1704067200, kNever},
      {"0 0 29 2 *", 3981398400, kNever},  // 2096-03-01: the next Feb 29 is in 2104
  };
  for (const NextCase& c : cases) expect_next(c);
}

TEST(CronNext, ExtremeInputsDoNotOverflow) {
  const CronSchedule every = parse_ok("* * * * *");
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(next_cron_time(every, kMin), std::optional<int64_t>(-9223372036854775800));
  EXPECT_EQ(next_cron_time(every, kMax), std::nullopt);
  EXPECT_EQ(next_cron_time(every, kMax - 3600), std::optional<int64_t>(9223372036854772260));
  EXPECT_EQ(next_cron_time(every, 9223372036854775680),
            std::optional<int64_t>(9223372036854775740));
}

TEST(CronNext, EmptyFieldNeverFires) {
  CronSchedule s = parse_ok("* * * * *");
  s.hour.reset();
  EXPECT_EQ(next_cron_time(s, 0), std::nullopt);
}

// Reference scan using the C library's UTC calendar: whole days when the date cannot match, else
// minute by minute. Looks at most `max_days` ahead.
std::optional<int64_t> brute_next(const CronSchedule& s, int64_t after, int64_t max_days) {
  int64_t t = (after >= 0 ? after / 60 : (after - 59) / 60) * 60 + 60;
  const int64_t end = t + max_days * 86400;
  while (t < end) {
    const auto tt = static_cast<std::time_t>(t);
    std::tm tm{};
    if (gmtime_r(&tt, &tm) == nullptr) return std::nullopt;
    const bool dom = s.day_of_month[tm.tm_mday];
    const bool dow = s.day_of_week[tm.tm_wday];
    const bool day = (s.dom_restricted && s.dow_restricted) ? (dom || dow) : (dom && dow);
    if (!day || !s.month[tm.tm_mon + 1]) {
      t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60);
      continue;
    }
    if (s.minute[tm.tm_min] && s.hour[tm.tm_hour]) return t;
    t += 60;
  }
  return std::nullopt;
}

TEST(CronNext, MatchesMinuteByMinuteScan) {
  const char* exprs[] = {
      "*/7 */5 * * *",   "15 3 */3 * MON,THU", "0 0 1-7 * 1", "0 12 * FEB,MAR SAT-7",
      "59 23 28-31 * *", "30 1 * * *",         "0 0 29 * *",  "5 4 * * sun",
      "0 0,12 1,15 * 3", "45 23 31 * *",
  };
  const int64_t starts[] = {
      1709078400,  // 2024-02-28
      1677542400,  // 2023-02-28
      4107283200,  // 2100-02-26
      -518400,     // 1969-12-25
      1735689599,  // 2024-12-31 23:59:59
      951696000,   // 2000-02-28
  };
  constexpr int64_t kScanDays = 400;
  for (const char* expr : exprs) {
    const CronSchedule s = parse_ok(expr);
    for (int64_t start : starts) {
      int64_t t = start;
      for (int i = 0; i < 12; ++i) {
        const std::optional<int64_t> want = brute_next(s, t, kScanDays);
        ASSERT_TRUE(want.has_value()) << expr << " after " << t;
        const std::optional<int64_t> got = next_cron_time(s, t);
        ASSERT_EQ(got, want) << expr << " after " << t;
        t = *want + (i % 3 == 1 ? 17 : 0);  // also start mid-minute
      }
    }
  }
}

// ---- describe_cron ----

TEST(CronDescribe, CommonShapes) {
  struct Case {
    const char* expr;
    const char* text;
  };
  const Case cases[] = {
      {"* * * * *", "every minute"},
      {"0 * * * *", "every hour at minute 0"},
      {"30 9 * * *", "at 09:30 every day"},
      {"*/15 * * * *", "every 15 minutes"},
      {"0,15,30,45 * * * *", "every 15 minutes"},
      {"0 */6 * * *", "every 6 hours at minute 0"},
      {"0 9,17 * * *", "at 09:00 and 17:00 every day"},
      {"0,30 9 * * *", "at 09:00 and 09:30 every day"},
      {"0 0,12 * * *", "every 12 hours at minute 0"},
      {"*/30 8 * * *", "at 08:00 and 08:30 every day"},
      {"*/10 8 * * *", "every 10 minutes during hour 8"},
      {"* 9 * * *", "every minute during hour 9"},
      {"*/15 9-17 * * MON-FRI", "every 15 minutes during hours 9-17 on Monday through Friday"},
      {"30 9 * * 1-5", "at 09:30 on Monday through Friday"},
      {"0 0 * * SAT,SUN", "at 00:00 on Sunday and Saturday"},
      {"0 0 1 * *", "at 00:00 on day 1 of the month"},
      {"0 0 1,15 * *", "at 00:00 on days 1 and 15 of the month"},
      {"0 0 13 * FRI", "at 00:00 on day 13 of the month or on Friday"},
      {"0 12 29 2 *", "at 12:00 on day 29 of the month in February"},
      {"30 9 * JAN-MAR,DEC *", "at 09:30 every day in January through March and December"},
      {"5,35 * * * *", "at minutes 5 and 35 past every hour"},
      {"7 1,3,5,7,9 * * *", "at minute 7 past hours 1, 3, 5, 7 and 9 every day"},
      {"0,20 8-18 1-7 * *", "at minutes 0 and 20 past hours 8-18 on days 1-7 of the month"},
  };
  for (const Case& c : cases) EXPECT_EQ(describe_cron(c.expr), c.text) << c.expr;
}

TEST(CronDescribe, EquivalentExpressionsReadTheSame) {
  EXPECT_EQ(describe_cron("0 0 * * 7"), describe_cron("0 0 * * sun"));
  EXPECT_EQ(describe_cron("0 0 * * 0,7"), "at 00:00 on Sunday");
  EXPECT_EQ(describe_cron("*/20 * * * *"), describe_cron("0-59/20 * * * *"));
}

TEST(CronDescribe, InvalidExpressionGivesTheParseError) {
  EXPECT_EQ(describe_cron("61 * * * *"), "schedule: minute value 61 out of range 0-59");
  EXPECT_EQ(describe_cron("* *"),
            "schedule: expected 5 fields (minute hour day-of-month month day-of-week), got 2");
}

}  // namespace
}  // namespace infera::platform

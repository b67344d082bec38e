import Common
import Foundation

/// Times as RFC 3339 writes them (`2026-11-24T21:11:07.123Z`,
/// `2026-11-24T22:11:07+01:00`): the form of a CloudEvent's `time` and of
/// JSON Schema's `date-time` format.
///
/// The project writes times one way (`Timestamp`: UTC, milliseconds); other
/// producers may write any form RFC 3339 allows, so reading is broader:
/// any offset, any number of fraction digits, `t` and `z` in lower case,
/// and the real length of each month (February 29th only in leap years).
/// A leap second (`23:59:60`) and the year 0 are refused, as python's
/// `jsonschema` refuses them: a `Date` cannot hold a leap second, and the
/// schema check and the envelope should agree with the reference.
enum RFC3339 {
    static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func digits(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var n = 0
            for i in range {
                guard (48...57).contains(b[i]) else { return nil }
                n = n * 10 + Int(b[i] - 48)
            }
            return n
        }
        func isByte(_ i: Int, _ characters: String) -> Bool { i < b.count && characters.utf8.contains(b[i]) }
        // full-date "T" partial-time
        guard let year = digits(0..<4), isByte(4, "-"), let month = digits(5..<7), isByte(7, "-"), let day = digits(8..<10),
              isByte(10, "Tt"), let hour = digits(11..<13), isByte(13, ":"), let minute = digits(14..<16), isByte(16, ":"),
              let second = digits(17..<19),
              (1...12).contains(month), (1...daysIn(month, of: year)).contains(day),
              year > 0, hour < 24, minute < 60, second < 60 else { return nil }
        var i = 19
        var nanoseconds = 0
        if isByte(i, ".") {
            i += 1
            let start = i
            while i < b.count, (48...57).contains(b[i]) { i += 1 }
            guard i > start else { return nil }
            // Nanoseconds are plenty: a Date holds less than that anyway.
            let kept = min(i - start, 9)
            nanoseconds = digits(start..<(start + kept))! * Int(pow(10.0, Double(9 - kept)))
        }
        // time-offset: "Z" or ("+" / "-") hh:mm
        var offsetSeconds = 0
        if isByte(i, "Zz") {
            i += 1
        } else if isByte(i, "+-"), let oh = digits((i + 1)..<(i + 3)), isByte(i + 3, ":"), let om = digits((i + 4)..<(i + 6)),
                  oh < 24, om < 60 {
            offsetSeconds = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Let Timestamp do the calendar: the same fields, written as UTC.
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let utc = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))Z"
        guard let whole = Timestamp.parse(utc) else { return nil }
        // Whole milliseconds first, the way Timestamp makes a Date, so that
        // a time read here equals the same time read by Timestamp.parse
        // (Dates are Doubles: the same instant by another sum can differ
        // in the last bit, and then two equal events would not be ==).
        let milliseconds = Timestamp.milliseconds(whole) + Int64(nanoseconds / 1_000_000) - Int64(offsetSeconds) * 1000
        return Date(timeIntervalSince1970: Double(milliseconds) / 1000 + Double(nanoseconds % 1_000_000) / 1e9)
    }

    static func daysIn(_ month: Int, of year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

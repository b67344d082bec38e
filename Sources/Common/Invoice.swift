/// The HTML invoice of a confirmed order. Rendering is pure so that every
/// stage, whether it renders in the request (stage 1) or in a background job
/// (stage 5), produces the same page for the same order.
public enum InvoiceDocument {
    /// Invoice numbers are sequential per shop: `INV-000042`.
    public static func number(_ sequence: Int) -> String {
        let digits = String(sequence)
        return "INV-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    public static func html(number: String, order: API.Order, customer: API.User) -> String {
        let rows = order.items.map { item in
            "<tr><td>\(escape(item.sku))</td><td>\(escape(item.name))</td><td class=\"n\">\(item.quantity)</td>"
                + "<td class=\"n\">\(dollars(item.unitPriceCents))</td><td class=\"n\">\(dollars(item.lineTotalCents))</td></tr>"
        }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en">
            <head><meta charset="utf-8"><title>Invoice \(escape(number))</title>
            <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{padding:4px 12px;border-bottom:1px solid #ddd}.n{text-align:right}</style>
            </head>
            <body>
            <h1>Invoice \(escape(number))</h1>
            <p>Order <span id="order-id">\(escape(order.id))</span>, placed \(Timestamp.format(order.createdAt))</p>
            <p>Billed to \(escape(customer.name)) &lt;\(escape(customer.email))&gt;</p>
            <table>
            <tr><th>SKU</th><th>Item</th><th>Qty</th><th>Unit price</th><th>Line total</th></tr>
            \(rows)
            <tr><td colspan="4"><strong>Total (\(order.currency.rawValue))</strong></td><td class="n" id="total"><strong>\(dollars(order.totalCents))</strong></td></tr>
            </table>
            </body>
            </html>

            """
    }

    /// 123456 cents → "1,234.56". Integer arithmetic only.
    public static func dollars(_ cents: Cents) -> String {
        let whole = String(cents / 100)
        var grouped = ""
        for (i, ch) in whole.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { grouped.append(",") }
            grouped.append(ch)
        }
        let fraction = cents % 100
        return String(grouped.reversed()) + "." + (fraction < 10 ? "0" : "") + String(fraction)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }
}

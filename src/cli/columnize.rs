//! Consul's tables: rows of cells aligned in columns joined by two
//! spaces, without borders (what ryanuber/columnize prints). The last
//! column is not padded.

/// Formats rows (each a list of cells) as aligned columns.
pub fn format(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            if i >= widths.len() {
                widths.push(w);
            } else if w > widths[i] {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for (r, row) in rows.iter().enumerate() {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
                out.push_str("  ");
            }
        }
        if r + 1 < rows.len() {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_like_columnize() {
        let rows = vec![
            vec!["Node".to_string(), "Address".to_string(), "Status".to_string()],
            vec!["ConsulServer1".to_string(), "192.168.1.11:8301".to_string(), "alive".to_string()],
        ];
        assert_eq!(
            super::format(&rows),
            "Node           Address            Status\nConsulServer1  192.168.1.11:8301  alive"
        );
    }
}

use super::*;

fn members(text: &str) -> Result<Vec<(String, String)>, JsonError> {
    let mut out = Vec::new();
    object(text, |k, v| {
        out.push((k.decode().into_owned(), v.text().to_owned()))
    })?;
    Ok(out)
}

#[test]
fn reads_top_level_members_in_place() {
    let m = members(r#" {"a" : 1, "b":{"a":[true,null,"x"]}, "c":"\u0041\n"} "#).unwrap();
    assert_eq!(
        m,
        [
            ("a".into(), "1".into()),
            ("b".into(), r#"{"a":[true,null,"x"]}"#.into()),
            ("c".into(), r#""\u0041\n""#.into()),
        ]
    );
}

#[test]
fn strings_decode() {
    let mut seen = Vec::new();
    object(r#"{"a":"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#, |_, v| {
        seen.push(v.as_str().unwrap().decode().into_owned());
    })
    .unwrap();
    assert_eq!(seen, ["x\"\\/\u{8}\u{c}\n\r\té😀"]);
}

#[test]
fn repeated_members_by_value_at_any_depth() {
    for bad in [
        r#"{"sub":"a","sub":"b"}"#,
        r#"{"sub":"a","\u0073ub":"b"}"#,
        r#"{"x":[{"k":1,"k":2}]}"#,
        r#"{"x":{"y":{"z":1,"z":1}}}"#,
        r#"{"client_id":1,"client_i\u0064":2}"#,
        r#"{"\u0061bcdefgh":1,"abcdefgh":2}"#,
        r#"{"a":1,"b":2,"\u0061":3}"#,
        r#"{"":1,"":2}"#,
    ] {
        assert_eq!(validate(bad), Err(JsonError::Invalid), "{bad}");
    }
    // Names that share their first bytes, or their length, are different names.
    for ok in [
        r#"{"abcdefgh":1,"abcdefghi":2,"abcdefgi":3,"abc":4,"ab":5,"abd":6,"":7}"#,
        r#"{"a":{"a":1},"b":[{"a":2}]}"#,
    ] {
        assert!(validate(ok).is_ok(), "{ok}");
    }
    // Past the inline keys, the hash set still finds the repeat.
    let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    let ok = format!("{{{}}}", many.join(","));
    assert!(validate(&ok).is_ok());
    let bad = format!("{{{},\"k\\u0033\":0}}", many.join(","));
    assert_eq!(validate(&bad), Err(JsonError::Invalid));
}

#[test]
fn grammar() {
    for good in [
        "0",
        "-0",
        "1.5e-3",
        "1E+2",
        "\"\"",
        "[]",
        "{}",
        "[1,[2,[3]]]",
        "null",
        " true ",
        "123456789012345678901234567890",
    ] {
        assert!(validate(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "01",
        "1.",
        ".1",
        "1e",
        "-",
        "+1",
        "[1,]",
        "{\"a\":1,}",
        "{a:1}",
        "[1 2]",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\t\"",
        "tru",
        "nul",
        "1e400",
        "{} {}",
        "\u{feff}{}",
        "NaN",
    ] {
        assert_eq!(validate(bad), Err(JsonError::Invalid), "{bad:?}");
    }
    assert_eq!(
        validate(&"[".repeat(64).to_string()),
        Err(JsonError::Invalid)
    );
    let deep = format!("{}{}", "[".repeat(64), "]".repeat(64));
    assert!(validate(&deep).is_ok());
    let deeper = format!("{}{}", "[".repeat(65), "]".repeat(65));
    assert_eq!(validate(&deeper), Err(JsonError::Invalid));
}

#[test]
fn only_objects_have_members() {
    assert_eq!(members("[1]"), Err(JsonError::NotAnObject));
    assert_eq!(members("[1"), Err(JsonError::Invalid));
    assert_eq!(members("{"), Err(JsonError::Invalid));
}

#[test]
fn array_items() {
    let mut items = Vec::new();
    object(r#"{"aud":[ "a", {"b":[1]} ,"c" ],"n":[]}"#, |k, v| {
        if k.decode() == "aud" {
            items.extend(v.items().map(|i| i.text().to_owned()));
        } else {
            assert_eq!(v.items().count(), 0);
        }
    })
    .unwrap();
    assert_eq!(items, [r#""a""#, r#"{"b":[1]}"#, r#""c""#]);
}

#[test]
fn a_plain_run_ends_where_the_byte_by_byte_scan_ends() {
    let slow = |bytes: &[u8]| {
        bytes
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
    };
    // Every byte value at every place of a word and of the tail, after plain bytes and
    // before any byte (a borrow must not hide or invent an earlier match).
    for len in 1..20 {
        for at in 0..len {
            for value in 0..=255u8 {
                for after in [b'a', 0x00, 0x1f, 0x20, b'"', 0x80, 0xff] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = value;
                    if let Some(next) = bytes.get_mut(at + 1) {
                        *next = after;
                    }
                    assert_eq!(plain_end(&bytes, 0), slow(&bytes), "{bytes:?}");
                    for start in 1..len {
                        let expected = slow(&bytes[start..]).map(|i| i + start);
                        assert_eq!(plain_end(&bytes, start), expected, "{bytes:?} {start}");
                    }
                }
            }
        }
    }
    // UTF-8 text with no special byte has no end.
    assert_eq!(plain_end("é😀ünïcödé text".as_bytes(), 0), None);
    assert_eq!(plain_end(b"abc", 3), None);
    assert_eq!(plain_end(b"abc", 4), None);
}

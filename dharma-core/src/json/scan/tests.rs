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
    ] {
        assert_eq!(validate(bad), Err(JsonError::Invalid), "{bad}");
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

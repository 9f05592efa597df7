//! The category taxonomy of sections 二(一)–二(十二): the shipped data loads and says what
//! the procedure says, routing follows the body table (TRF-3), and malformed data is refused
//! with an error naming the entry and what is wrong.

use tousu_domain::ids::BodyCode;
use tousu_domain::taxonomy::{CategoryCode, Taxonomy, TaxonomyError};

/// The shipped data, for tests that break it in one place.
const BUILTIN_CATEGORIES_TOML: &str = include_str!("../data/categories.toml");

/// The procedure, outside the repository; tests that need it skip with a reason without it.
const PROCESS_TEXT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/mission/process.zh.txt");

fn builtin() -> Taxonomy {
    Taxonomy::builtin().expect("the built-in taxonomy loads")
}

/// The built-in data with `from` replaced by `to`, exactly once.
fn builtin_with(from: &str, to: &str) -> String {
    assert_eq!(BUILTIN_CATEGORIES_TOML.matches(from).count(), 1, "{from:?} occurs exactly once in the built-in data");
    BUILTIN_CATEGORIES_TOML.replacen(from, to, 1)
}

/// The built-in data split at the `[[body]]` table of `body`: everything before it, the
/// body's own tables, and everything after.
fn split_at_body(body: BodyCode) -> (&'static str, &'static str, &'static str) {
    let marker = format!("[[body]]\ncode = \"{body}\"\n");
    let start = BUILTIN_CATEGORIES_TOML.find(&marker).expect("the body's table is in the built-in data");
    let end = BUILTIN_CATEGORIES_TOML[start + marker.len()..]
        .find("[[body]]\n")
        .map_or(BUILTIN_CATEGORIES_TOML.len(), |offset| start + marker.len() + offset);
    (&BUILTIN_CATEGORIES_TOML[..start], &BUILTIN_CATEGORIES_TOML[start..end], &BUILTIN_CATEGORIES_TOML[end..])
}

fn code(taxonomy: &Taxonomy, code: &str) -> CategoryCode {
    taxonomy.category_code(code).unwrap_or_else(|error| panic!("{code} is a category: {error}"))
}

fn text_of(taxonomy: &Taxonomy, category: &str) -> String {
    let code = code(taxonomy, category);
    taxonomy.category(&code).expect("a checked code has a category").text_zh.clone()
}

#[test]
fn builtin_taxonomy_loads_with_every_body_in_section_order() {
    let taxonomy = builtin();
    let bodies: Vec<(BodyCode, &str, &str)> =
        taxonomy.bodies().map(|body| (body.code, body.name_zh.as_str(), body.section.as_str())).collect();
    assert_eq!(
        bodies,
        vec![
            (BodyCode::ZJ, "住建部门", "二(一)"),
            (BodyCode::FG, "发展改革部门", "二(二)"),
            (BodyCode::SJ, "市场监督管理部门", "二(三)"),
            (BodyCode::XF, "消防救援部门", "二(四)"),
            (BodyCode::ZR, "自然资源部门", "二(五)"),
            (BodyCode::GA, "公安部门", "二(六)"),
            (BodyCode::NY, "能源部门", "二(七)"),
            (BodyCode::WT, "卫体部门", "二(八)"),
            (BodyCode::XZ, "行政审批服务管理部门", "二(九)"),
            (BodyCode::ZF, "城市管理综合执法部门", "二(十)"),
            (BodyCode::JB, "街办（乡镇）", "二(十一)"),
            (BodyCode::SQ, "社区", "二(十二)"),
        ]
    );
    for body in taxonomy.bodies() {
        assert!(!body.name_en.trim().is_empty(), "{} has an English name", body.code);
        assert_eq!(taxonomy.body(body.code), Some(body));
    }
}

#[test]
fn builtin_taxonomy_has_the_procedures_number_of_categories_per_body() {
    let taxonomy = builtin();
    // Worked out from process.zh.txt: 住建 items 1 (①–⑧) and 2 (①–④) plus other; 发改 items
    // 1–8 plus other; 市场监管 item 1, 2 (①②), 3 (①②), 4 plus other; 消防 eight items (the
    // second "3" renumbered) plus other; 城管执法 one unnumbered matter and no other.
    let expected = [
        (BodyCode::ZJ, 13),
        (BodyCode::FG, 9),
        (BodyCode::SJ, 7),
        (BodyCode::XF, 9),
        (BodyCode::ZR, 4),
        (BodyCode::GA, 3),
        (BodyCode::NY, 5),
        (BodyCode::WT, 2),
        (BodyCode::XZ, 3),
        (BodyCode::ZF, 1),
        (BodyCode::JB, 11),
        (BodyCode::SQ, 4),
    ];
    for (body, count) in expected {
        assert_eq!(taxonomy.categories_of(body).count(), count, "number of categories of {body}");
    }
    assert_eq!(taxonomy.categories().count(), 71);
}

#[test]
fn builtin_taxonomy_lists_each_bodys_categories_in_procedure_order() {
    let taxonomy = builtin();
    let codes =
        |body| -> Vec<String> { taxonomy.categories_of(body).map(|category| category.code.to_string()).collect() };
    assert_eq!(
        codes(BodyCode::ZJ),
        [
            "ZJ-1-1", "ZJ-1-2", "ZJ-1-3", "ZJ-1-4", "ZJ-1-5", "ZJ-1-6", "ZJ-1-7", "ZJ-1-8", "ZJ-2-1", "ZJ-2-2",
            "ZJ-2-3", "ZJ-2-4", "ZJ-OTHER",
        ]
    );
    assert_eq!(codes(BodyCode::SJ), ["SJ-1", "SJ-2-1", "SJ-2-2", "SJ-3-1", "SJ-3-2", "SJ-4", "SJ-OTHER"]);
    assert_eq!(codes(BodyCode::XF), ["XF-1", "XF-2", "XF-3", "XF-4", "XF-5", "XF-6", "XF-7", "XF-8", "XF-OTHER"]);
    assert_eq!(codes(BodyCode::ZF), ["ZF-1"]);
    assert_eq!(
        codes(BodyCode::JB),
        ["JB-1", "JB-2", "JB-3", "JB-4", "JB-5", "JB-6", "JB-7", "JB-8", "JB-9", "JB-10", "JB-OTHER",]
    );
}

#[test]
fn builtin_taxonomy_has_the_procedures_text_for_spot_checked_categories() {
    let taxonomy = builtin();

    let zj_1_3 = code(&taxonomy, "ZJ-1-3");
    let zj_1_3 = taxonomy.category(&zj_1_3).expect("ZJ-1-3 exists");
    assert_eq!(zj_1_3.text_zh, "小区环境卫生差");
    assert_eq!(zj_1_3.heading_zh.as_deref(), Some("物业企业未按合同履约"));

    let zj_2_1 = code(&taxonomy, "ZJ-2-1");
    let zj_2_1 = taxonomy.category(&zj_2_1).expect("ZJ-2-1 exists");
    assert!(zj_2_1.text_zh.starts_with("擅自利用小区公共部位"));
    assert_eq!(zj_2_1.heading_zh.as_deref(), Some("物业企业侵害业主利益"));

    assert_eq!(text_of(&taxonomy, "FG-4"), "堵塞人民防空工程孔口或者修建影响孔口使用的与人民防空无关的其他建筑");
    assert_eq!(text_of(&taxonomy, "SJ-3-1"), "小区内电梯未按照特种设备相关安全技术规范要求进行维护保养");
    // The source's line break inside 经营范围 is joined.
    assert_eq!(text_of(&taxonomy, "SJ-1"), "检查物业服务企业经营主体是否合法，营业执照和经营范围是否合规");
    // 二(四) prints two items "3"; items are numbered in order.
    assert!(text_of(&taxonomy, "XF-2").ends_with("或者改变、破坏建筑立面防火结构"));
    assert!(text_of(&taxonomy, "XF-3").contains("外墙外保温"));
    assert!(text_of(&taxonomy, "XF-4").contains("消防控制室值班制度"));
    assert!(text_of(&taxonomy, "XF-5").contains("停用建筑消防设施"));
    assert!(text_of(&taxonomy, "XF-6").contains("停放电动自行车"));
    assert!(text_of(&taxonomy, "XF-7").contains("不履行法律法规规定的消防安全职责"));
    assert!(text_of(&taxonomy, "XF-8").contains("消防水泵接合器"));
    assert_eq!(text_of(&taxonomy, "ZF-1"), "物业管理区域内依法、依规、依职应当实施的处罚");
    assert_eq!(text_of(&taxonomy, "JB-OTHER"), "法律法规规章规定或者县级以上人民政府确定的其他职责");
    assert_eq!(
        text_of(&taxonomy, "SQ-OTHER"),
        "党中央、国务院明确要求，法律法规明确规定，或者经省委、省政府同意的其他职责"
    );
}

#[test]
fn builtin_taxonomy_has_one_other_category_last_for_every_body_but_zf() {
    let taxonomy = builtin();
    for body in BodyCode::ALL {
        let categories: Vec<_> = taxonomy.categories_of(body).collect();
        let others: Vec<_> = categories
            .iter()
            .filter(|category| category.is_other())
            .map(|category| category.code.to_string())
            .collect();
        if body == BodyCode::ZF {
            assert!(others.is_empty(), "ZF has no other category: {others:?}");
            continue;
        }
        assert_eq!(others, [format!("{body}-OTHER")]);
        assert!(categories.last().is_some_and(|category| category.is_other()));
    }
    for (other, text) in [
        ("ZJ-OTHER", "法律法规规章规定的其他事项"),
        ("FG-OTHER", "法律法规规章规定的其他事项"),
        ("XZ-OTHER", "法律法规规章规定的其他事项"),
    ] {
        assert_eq!(text_of(&taxonomy, other), text);
    }
    assert_eq!(taxonomy.category_code("ZF-OTHER"), Err(TaxonomyError::UnknownCategory("ZF-OTHER".to_owned())));
}

/// TRF-3: a category decides its responsible body, one row per body at least.
#[test]
fn trf_3_category_routes_to_its_body() {
    let taxonomy = builtin();
    let table = [
        ("ZJ-1-3", BodyCode::ZJ),
        ("ZJ-2-1", BodyCode::ZJ),
        ("ZJ-OTHER", BodyCode::ZJ),
        ("FG-4", BodyCode::FG),
        ("FG-OTHER", BodyCode::FG),
        ("SJ-1", BodyCode::SJ),
        ("SJ-3-1", BodyCode::SJ),
        ("XF-4", BodyCode::XF),
        ("XF-6", BodyCode::XF),
        ("ZR-2", BodyCode::ZR),
        ("GA-2", BodyCode::GA),
        ("NY-3", BodyCode::NY),
        ("WT-1", BodyCode::WT),
        ("XZ-2", BodyCode::XZ),
        ("ZF-1", BodyCode::ZF),
        ("JB-10", BodyCode::JB),
        ("JB-OTHER", BodyCode::JB),
        ("SQ-3", BodyCode::SQ),
        ("SQ-OTHER", BodyCode::SQ),
    ];
    for (category, body) in table {
        let category = code(&taxonomy, category);
        assert_eq!(taxonomy.route(&category), Ok(body), "route of {category}");
    }
    let routed: std::collections::BTreeSet<BodyCode> = table.iter().map(|(_, body)| *body).collect();
    assert_eq!(routed.len(), BodyCode::ALL.len(), "the table covers every body");
}

/// Interpretation 22: the data marks matters of residents' or third parties' conduct and of
/// government bodies' own duties as not the company's by default; the company's own matters
/// (GA-1's 物业企业未按规定…) stay attributable, and a category unmarked is attributable.
#[test]
fn interp_22_categories_say_whether_a_finding_is_the_companys_by_default() {
    let taxonomy = builtin();
    let attributable = |category: &str| taxonomy.category(&code(&taxonomy, category)).expect("a category").attributable;
    for own in ["ZJ-1-2", "ZJ-2-3", "ZJ-OTHER", "SJ-2-1", "SJ-3-1", "XF-7", "GA-1", "JB-10"] {
        assert!(attributable(own), "{own} is the company's own matter");
    }
    for other in ["GA-2", "GA-OTHER", "ZR-2", "NY-2", "XF-6", "WT-1", "FG-1", "XZ-1", "JB-3", "SQ-2", "ZF-1"] {
        assert!(!attributable(other), "{other} is not the company's own matter by default");
    }
    let marked = BUILTIN_CATEGORIES_TOML.matches("attributable = false").count();
    let not_attributable = taxonomy.categories().filter(|category| !category.attributable).count();
    assert_eq!(not_attributable, marked, "every category marked, and only those, is not attributable");
    let refused = Taxonomy::parse(&builtin_with("code = \"GA-2\"", "code = \"GA-2\"\nattributable = \"no\""));
    assert!(refused.is_err(), "attributability is true or false");
}

/// TRF-3: every category routes to the body whose section lists it, named by its prefix.
#[test]
fn trf_3_every_category_routes_to_the_body_of_its_code_prefix() {
    let taxonomy = builtin();
    for category in taxonomy.categories() {
        let prefix = category.code.as_str().split('-').next().expect("a code has a prefix");
        let body = taxonomy.route(&category.code).expect("a listed code routes");
        assert_eq!(body.as_str(), prefix, "route of {}", category.code);
        assert_eq!(body, category.body);
    }
}

/// TRF-3: a code that is not in the taxonomy is refused, and routes nowhere.
#[test]
fn trf_3_unknown_category_codes_are_refused() {
    let taxonomy = builtin();
    for unknown in [
        "", "ZJ", "ZJ-1", "ZJ-1-9", "ZJ-3", "zj-1-3", " ZJ-1-3", "ZJ-1-3 ", "XF-9", "ZF-OTHER", "ZF-2", "SJ-3", "XX-1",
        "JB-11", "SQ-4",
    ] {
        assert_eq!(
            taxonomy.category_code(unknown),
            Err(TaxonomyError::UnknownCategory(unknown.to_owned())),
            "{unknown:?} is refused"
        );
    }
    // A code that arrives already typed (here from JSON) is still checked when routed.
    let smuggled: CategoryCode = serde_json::from_str("\"XF-9\"").expect("a JSON string");
    assert_eq!(taxonomy.route(&smuggled), Err(TaxonomyError::UnknownCategory("XF-9".to_owned())));
    assert_eq!(taxonomy.category(&smuggled), None);
}

#[test]
fn malformed_taxonomy_data_is_refused_with_the_entry_and_the_fault() {
    let wrong_order = {
        let (before, ny, after) = split_at_body(BodyCode::NY);
        format!("{before}{after}\n{ny}")
    };
    let missing_body = {
        let (before, _ny, after) = split_at_body(BodyCode::NY);
        format!("{before}{after}")
    };
    let other_first = builtin_with(
        "code = \"WT-1\"\ntext_zh = \"饮用水供水单位供应的饮用水不符合国家卫生标准和卫生规范的监督\"\nattributable = false\n\n[[body.category]]\ncode = \"WT-OTHER\"",
        "code = \"WT-OTHER\"\ntext_zh = \"饮用水供水单位供应的饮用水不符合国家卫生标准和卫生规范的监督\"\nattributable = false\n\n[[body.category]]\ncode = \"WT-1\"",
    );
    let cases: Vec<(&str, String, TaxonomyError)> = vec![
        (
            "duplicate code",
            builtin_with("code = \"ZJ-1-4\"", "code = \"ZJ-1-3\""),
            TaxonomyError::DuplicateCode("ZJ-1-3".to_owned()),
        ),
        (
            "gap in item numbering",
            builtin_with("code = \"FG-5\"", "code = \"FG-9\""),
            TaxonomyError::NumberOutOfSequence { code: "FG-9".to_owned(), expected: "FG-5 or FG-5-1".to_owned() },
        ),
        (
            "gap in sub-item numbering",
            builtin_with("code = \"ZJ-1-5\"", "code = \"ZJ-1-9\""),
            TaxonomyError::NumberOutOfSequence {
                code: "ZJ-1-9".to_owned(),
                expected: "ZJ-1-5, ZJ-2 or ZJ-2-1".to_owned(),
            },
        ),
        (
            "the printed numbering of 二(四) with two items 3",
            builtin_with("code = \"XF-4\"", "code = \"XF-3\""),
            TaxonomyError::DuplicateCode("XF-3".to_owned()),
        ),
        (
            "wrong body prefix",
            builtin_with("code = \"SJ-4\"", "code = \"FG-4\""),
            TaxonomyError::WrongBodyPrefix { code: "FG-4".to_owned(), body: BodyCode::SJ },
        ),
        (
            "malformed code",
            builtin_with("code = \"GA-2\"", "code = \"GA-02\""),
            TaxonomyError::MalformedCode("GA-02".to_owned()),
        ),
        (
            "code without a number",
            builtin_with("code = \"ZF-1\"", "code = \"ZF\""),
            TaxonomyError::MalformedCode("ZF".to_owned()),
        ),
        ("missing body", missing_body, TaxonomyError::MissingBody(BodyCode::NY)),
        ("body twice", builtin_with("code = \"NY\"", "code = \"GA\""), TaxonomyError::DuplicateBody(BodyCode::GA)),
        (
            "bodies out of section order",
            wrong_order,
            TaxonomyError::BodyOutOfOrder { found: BodyCode::WT, expected: BodyCode::NY },
        ),
        ("unknown body", builtin_with("code = \"NY\"", "code = \"NE\""), TaxonomyError::UnknownBody("NE".to_owned())),
        (
            "wrong section",
            builtin_with("section = \"二(四)\"", "section = \"二(三)\""),
            TaxonomyError::WrongSection { body: BodyCode::XF, found: "二(三)".to_owned(), expected: "二(四)" },
        ),
        (
            "body without categories",
            builtin_with(
                "[[body.category]]\ncode = \"ZF-1\"\ntext_zh = \"物业管理区域内依法、依规、依职应当实施的处罚\"\nattributable = false\n",
                "",
            ),
            TaxonomyError::NoCategories(BodyCode::ZF),
        ),
        (
            "empty category text",
            builtin_with("text_zh = \"小区环境卫生差\"", "text_zh = \" \""),
            TaxonomyError::EmptyText { entry: "category ZJ-1-3".to_owned(), field: "text_zh" },
        ),
        (
            "empty body name",
            builtin_with("name_zh = \"社区\"", "name_zh = \"\""),
            TaxonomyError::EmptyText { entry: "body SQ".to_owned(), field: "name_zh" },
        ),
        (
            "other matters not last",
            other_first,
            TaxonomyError::OtherNotLast { other: "WT-OTHER".to_owned(), next: "WT-1".to_owned() },
        ),
        (
            "sub-item without heading",
            builtin_with("code = \"SJ-2-1\"\nheading_zh = \"违反规定收费或乱收费\"\n", "code = \"SJ-2-1\"\n"),
            TaxonomyError::MissingHeading("SJ-2-1".to_owned()),
        ),
        (
            "sub-items disagreeing on their heading",
            builtin_with(
                "code = \"SJ-2-2\"\nheading_zh = \"违反规定收费或乱收费\"\n",
                "code = \"SJ-2-2\"\nheading_zh = \"违反规定收费\"\n",
            ),
            TaxonomyError::HeadingMismatch {
                code: "SJ-2-2".to_owned(),
                found: "违反规定收费".to_owned(),
                expected: "违反规定收费或乱收费".to_owned(),
            },
        ),
        (
            "item with a heading",
            builtin_with("code = \"SJ-4\"\n", "code = \"SJ-4\"\nheading_zh = \"广告\"\n"),
            TaxonomyError::UnexpectedHeading("SJ-4".to_owned()),
        ),
    ];
    for (fault, data, expected) in cases {
        assert_eq!(Taxonomy::parse(&data), Err(expected), "{fault}");
    }
}

#[test]
fn taxonomy_data_that_is_not_the_expected_toml_is_refused() {
    for (fault, data) in [
        ("not toml", "[[body]\n".to_owned()),
        ("unknown field", builtin_with("code = \"ZF-1\"\n", "code = \"ZF-1\"\nbody = \"ZF\"\n")),
        ("missing text", builtin_with("text_zh = \"物业管理区域内依法、依规、依职应当实施的处罚\"\n", "")),
    ] {
        assert!(matches!(Taxonomy::parse(&data), Err(TaxonomyError::InvalidData(_))), "{fault}");
    }
    assert_eq!(Taxonomy::parse(""), Err(TaxonomyError::MissingBody(BodyCode::ZJ)));
}

#[test]
fn taxonomy_errors_name_the_entry_and_the_fault() {
    assert_eq!(
        TaxonomyError::NumberOutOfSequence { code: "FG-9".to_owned(), expected: "FG-5 or FG-5-1".to_owned() }
            .to_string(),
        "category FG-9 is out of sequence: expected FG-5 or FG-5-1"
    );
    assert_eq!(
        TaxonomyError::WrongBodyPrefix { code: "FG-4".to_owned(), body: BodyCode::SJ }.to_string(),
        "category FG-4 is listed under body SJ but its code does not start with SJ-"
    );
    assert_eq!(TaxonomyError::MissingBody(BodyCode::NY).to_string(), "body NY is missing");
}

/// Every body's name, every category's text and every heading occur verbatim in the
/// procedure, once whitespace (including the source's stray line breaks) is removed.
#[test]
#[expect(clippy::print_stderr, reason = "a skipped check says why on the test's output")]
fn builtin_taxonomy_text_is_verbatim_from_the_procedure() {
    let Ok(procedure) = std::fs::read_to_string(PROCESS_TEXT_PATH) else {
        eprintln!("skipped: the procedure text is not at {PROCESS_TEXT_PATH}");
        return;
    };
    let without_whitespace = |text: &str| -> String { text.chars().filter(|c| !c.is_whitespace()).collect() };
    let procedure = without_whitespace(&procedure);
    let taxonomy = builtin();
    for body in taxonomy.bodies() {
        let numeral =
            body.section.strip_prefix("二(").and_then(|rest| rest.strip_suffix(')')).expect("a section of part 二");
        let heading = format!("（{numeral}）{}督促办理事项", body.name_zh);
        assert!(procedure.contains(&heading), "{heading} is in the procedure");
    }
    for category in taxonomy.categories() {
        assert!(
            procedure.contains(&without_whitespace(&category.text_zh)),
            "the text of {} is in the procedure",
            category.code
        );
        assert_eq!(
            category.text_zh.trim(),
            category.text_zh,
            "the text of {} has no surrounding whitespace",
            category.code
        );
        assert!(!category.text_zh.ends_with(['；', '。']), "the text of {} has no trailing punctuation", category.code);
        if let Some(heading) = &category.heading_zh {
            let item_heading = format!("{heading}。主要包括：");
            assert!(procedure.contains(&item_heading), "the heading of {} is in the procedure", category.code);
        }
    }
}

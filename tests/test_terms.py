"""Keywords in several languages: word forms joined, stop words dropped, words cut out of scripts
without spaces, duplicates counted, labels never shared, languages detected."""

from __future__ import annotations

import pytest

from pipeline import terms
from tests.conftest import label_groups


def test_keywords_join_word_forms_and_drop_stop_words():
    texts = [
        "the app crashes when I open it",
        "apps crash all the time",
        "my app crashed again",
        "crashing app after the update",
        "refund my money please",
        "I want a refund for this",
        "refunds take too long",
        "still waiting for the refund money",
    ]
    frame = label_groups(texts, [0, 0, 0, 0, 1, 1, 1, 1])
    crash = frame.loc[0, "keywords"]
    assert crash[0] == "app crash"  # app/apps and crash/crashes/crashed/crashing counted as one
    stems = [terms.Stemmer(["en"])(w) for k in crash for w in k.split()]
    assert stems.count("crash") == 1 and stems.count("app") == 1  # no "apps" or "crashes" beside it
    everything = [w for kws in frame["keywords"] for k in kws for w in k.split()]
    assert not {"the", "my", "for", "this", "i", "it", "a"} & set(everything)
    assert frame.loc[1, "keywords"][0].startswith("refund")  # refund and refunds as one


@pytest.mark.parametrize(
    ("language", "texts", "stop"),
    [
        (
            "es",
            ["la aplicación se cierra cuando abro la cámara", "la cámara no funciona en la aplicación"],
            {"la", "se", "en", "no", "cuando"},
        ),
        (
            "de",
            ["die App stürzt ab wenn ich die Kamera öffne", "die Kamera ist nach dem Update kaputt"],
            {"die", "ich", "ist", "nach", "dem", "wenn"},
        ),
        (
            "fr",
            [
                "l'application plante quand j'ouvre la caméra",
                "la caméra ne marche pas avec cette application",
            ],
            {"la", "ne", "pas", "avec", "cette", "quand"},
        ),
        (
            "pt",
            ["o aplicativo fecha quando abro a câmera", "a câmera não funciona com o aplicativo"],
            {"não", "com", "quando"},
        ),
        (
            "it",
            ["l'app si blocca quando apro la fotocamera", "la fotocamera non funziona con questa app"],
            {"si", "la", "non", "con", "questa"},
        ),
    ],
)
def test_stop_words_of_other_languages_are_found_and_dropped(language, texts, stop):
    texts = texts + [f"{text} {n}" for text in texts for n in (2, 3)]  # six distinct texts
    assert terms.detect_languages(texts) == [language]
    frame = label_groups(texts + ["refund money please", "money back refund"], [0] * 6 + [1, 1])
    words = {w for k in frame.loc[0, "keywords"] for w in k.split()}
    assert words and not stop & words


def test_chinese_and_japanese_get_words_not_sentences():
    chinese = [
        "我无法登录我的账户",
        "登录失败，账户被锁定",
        "账户登录一直失败",
        "退款什么时候到账",
        "我要申请退款",
        "退款还没有到账",
    ]
    frame = label_groups(chinese, [0, 0, 0, 1, 1, 1])
    assert frame.loc[0, "keywords"][:2] == ["登录", "账户"]  # log in, account
    assert frame.loc[1, "keywords"][0] == "退款"  # refund
    assert frame.loc[0, "label"] == "登录, 账户, 失败"
    everything = [k for kws in frame["keywords"] for k in kws]
    assert all(2 <= len(k) <= 4 for k in everything)  # words, never a whole text, never a particle
    assert not {"我", "的", "了"} & set(everything)
    japanese = [
        "アプリがクラッシュしました",
        "起動するとアプリがクラッシュする",
        "ログインできません",
        "パスワードでログインできない",
    ]
    frame = label_groups(japanese, [0, 0, 1, 1])
    assert frame.loc[0, "keywords"][:2] == ["アプリ", "クラッシュ"]  # app, crash
    assert frame.loc[1, "keywords"][0] == "ログイン"  # log in
    assert not {"が", "を", "しました", "すると"} & {k for kws in frame["keywords"] for k in kws}


def test_scripts_without_spaces_and_without_a_tokenizer_get_letter_trigrams():
    thai = ["แอปค้างบ่อยมาก", "แอปค้างตลอดเวลา", "ขอเงินคืนด้วย", "ต้องการเงินคืน"]
    frame = label_groups(thai, [0, 0, 1, 1])
    freeze = frame.loc[0, "keywords"]
    assert {"ค้าง", "แอป"} <= set(freeze[:2])  # "freezes", "app": the trigrams both texts share
    assert any("งินคื" in k for k in frame.loc[1, "keywords"])  # from เงินคืน, "refund"
    marks = ("Mn", "Mc")
    assert all(terms.unicodedata.category(k[0]) not in marks for kws in frame["keywords"] for k in kws)
    assert not any(terms.overlaps(a, b) for a in freeze for b in freeze if a != b)  # no near-duplicates


def test_duplicates_count_with_their_multiplicity_in_sizes_and_keywords():
    texts = ["card declined at shop", "pin blocked at shop"] + ["card declined"] * 5 + ["pin blocked"]
    frame = label_groups(texts, [0, 0, 0, 0, 0, 0, 0, 0])
    assert frame.loc[0, "size"] == 8
    keywords = frame.loc[0, "keywords"]
    assert keywords.index("card declined") < keywords.index("pin blocked")  # 6 rows against 2


def test_two_clusters_never_share_alabel_groups():
    texts = ["card declined"] * 2 + ["card declined today"] * 2 + ["card declined again"]
    frame = label_groups(texts, [0, 0, 1, 1, 2])
    assert frame["label"].nunique() == len(frame)


def test_stop_word_setting_accepts_language_codes():
    from pipeline import PipelineConfig

    config = PipelineConfig().with_values({"label.stop_words": "en,de"})
    assert config.label.stop_words == "en,de"
    with pytest.raises(Exception, match="label.stop_words"):
        PipelineConfig().with_values({"label.stop_words": "klingon"})


def test_languages_are_detected_from_a_few_texts_but_not_from_stray_words():
    english = [f"the app crashes when I open it on day {n}" for n in range(60)]
    spanish = ["la aplicación se cierra cuando abro la cámara", "no puedo iniciar sesión en mi cuenta"]
    assert terms.detect_languages(english) == ["en"]
    assert terms.detect_languages(english + spanish) == ["en", "es"]
    stray = [f"a la carte menu {n} and the de facto standard" for n in range(10)]  # stray "la", "de"
    assert terms.detect_languages(english + stray) == ["en"]
    assert terms.detect_languages(english + ["我无法登录我的账户", "退款还没有到账"]) == ["en", "zh"]
    mojibake = ["caf茅 menu", "na茂ve 鈥 text"]  # UTF-8 read as GBK: a stray Han character, not Chinese
    assert terms.detect_languages(english + mojibake) == ["en"]

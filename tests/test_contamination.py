"""n-gram contamination detection."""

import datasets
import pytest

from minilm.data.contamination import ContaminationIndex, contamination_report, decontaminate, ngrams, words


def test_words_split_punctuation():
    assert words("What is 47+38?") == ["what", "is", "47", "+", "38", "?"]


def test_whole_question_must_appear():
    index = ContaminationIndex(["Where was Gia Reyes born?", "What is 47 + 38?"], n=4)
    assert index.matches("Quiz. WHERE was Gia Reyes born? Vienna.") == [0]
    assert index.matches("Where was Gia Reyes raised?") == []  # shares n-grams, not the whole item
    assert index.matches("what is 47 + 38 ? and where was gia reyes born ?") == [0, 1]


def test_short_items_match_as_one_gram():
    assert ngrams(["a", "b"], 8) == {("a", "b")}
    assert ngrams([], 8) == set()
    index = ContaminationIndex(["2 + 2"], n=8)
    assert index.matches("so 2 + 2 = 4") == [0] and index.matches("2 + 3") == []


def test_report_and_decontaminate_remove_the_planted_leak():
    index = ContaminationIndex(["How many times does the letter 'r' appear in 'strawberry'?"])
    texts = ["clean text about berries", "leak: How many times does the letter 'r' appear in 'strawberry'? 3", "more"]
    report = contamination_report(texts, index)
    assert report["contaminated_documents"] == [1] and report["leaked_items"] == [0]
    kept = decontaminate(datasets.Dataset.from_dict({"text": texts}), index)
    assert kept["text"] == [texts[0], texts[2]]


@pytest.mark.parametrize("call", [
    lambda: ContaminationIndex("What is 47 + 38?"),
    lambda: contamination_report("abc", ContaminationIndex(["a"])),
])
def test_a_bare_string_is_not_a_list_of_texts(call):
    with pytest.raises(TypeError, match="list of texts"):
        call()


@pytest.mark.parametrize("n, error", [(True, TypeError), (2.5, TypeError), ("3", TypeError), (0, ValueError)])
def test_n_must_be_a_positive_int(n, error):
    with pytest.raises(error, match="n="):
        ContaminationIndex(["What is 47 + 38?"], n=n)


def test_decontaminate_names_a_missing_column():
    dataset = datasets.Dataset.from_dict({"body": ["What is 47 + 38?"], "id": [0]})
    with pytest.raises(ValueError, match="^the dataset has no column 'text': its columns are body, id$"):
        decontaminate(dataset, ContaminationIndex(["What is 47 + 38?"]))

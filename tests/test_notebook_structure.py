"""The shape of the notebook: the lesson first (Part I, short and plain), the plumbing in one set-up cell, and Part
II in optional sections. Read from the committed notebook and its saved outputs."""

import ast
import json
import re

import pytest

from handwritten_digits.export import NOTEBOOK

CELLS = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def output_text(cell: dict) -> str:
    return "\n".join("".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                     for output in cell.get("outputs", []))


def hidden(cell: dict) -> bool:
    metadata = cell.get("metadata", {})
    return bool(metadata.get("jupyter", {}).get("source_hidden")) or metadata.get("cellView") == "form"


PART_TWO = next(index for index, cell in enumerate(CELLS)
                if cell["cell_type"] == "markdown" and source(cell).startswith("# Part II"))
PART_ONE = CELLS[:PART_TWO]
FIRST_TEST_ACCURACY = next(index for index, cell in enumerate(CELLS)
                           if cell["cell_type"] == "code" and re.search(r"(?i)test accuracy", output_text(cell)))


def test_a_tested_network_comes_within_the_first_35_percent_of_the_cells_and_185_visible_code_lines():
    assert FIRST_TEST_ACCURACY / len(CELLS) <= 0.35, (FIRST_TEST_ACCURACY, len(CELLS))
    visible = [line for cell in CELLS[:FIRST_TEST_ACCURACY + 1] if cell["cell_type"] == "code" and not hidden(cell)
               for line in source(cell).splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(visible) <= 185, len(visible)


VISIBLE_CODE = [(index, source(cell)) for index, cell in enumerate(PART_ONE)
                if cell["cell_type"] == "code" and not hidden(cell)]
MARKDOWN = [(index, source(cell)) for index, cell in enumerate(PART_ONE) if cell["cell_type"] == "markdown"]

# term: (how Part I's markdown defines it, in italics or bold; how a code cell uses it, comments included)
TERMS = {
    "tensor": (r"\*tensors?\*", r"(?i)tensor"),
    "gradient": (r"\*gradients?\*", r"(?i)grad"),
    "logits": (r"\*logits\*", r"(?i)logit"),
    "softmax": (r"\*softmax\*", r"(?i)softmax"),
    "epoch": (r"\*epochs?\*", r"(?i)epoch"),
    "mini-batch": (r"\*mini-batch(es)?\*", r"(?i)batch"),
    "learning rate": (r"\*learning rate\*", r"(?i)learning.rate|\blr\b"),
    "momentum": (r"\*momentum\*", r"(?i)momentum"),
    "one-cycle": (r"\*one-cycle schedule\*|\*\*one-cycle schedule\*\*", r"(?i)one.cycle"),
    "over-fitting": (r"\*over-fitting\*", r"(?i)over-?fit"),
    "validation": (r"\*validation split\*", r"(?i)validation|\bval_"),
}


@pytest.mark.parametrize("term", TERMS)
def test_each_term_is_defined_in_part_ones_markdown_before_a_visible_code_cell_uses_it(term):
    """The hidden set-up cell is left out: it says it need not be read. A term no code cell uses (over-fitting) must
    still be defined in Part I."""
    defined, used = TERMS[term]
    definition = next(index for index, text in MARKDOWN if re.search(defined, text))
    first_use = next((index for index, text in VISIBLE_CODE if re.search(used, text)), len(PART_ONE))
    assert definition < first_use, (term, definition, first_use)


def test_part_one_teaches_the_pytorch_idioms_in_code_of_its_own():
    code = [text for _, text in VISIBLE_CODE]
    assert any("DataLoader(" in text and "next(iter(" in text for text in code)
    assert any(re.search(r"for \w+, \w+ in loader:", text) for text in code)  # the standard loop, over the loader
    assert any("train_loader = DataLoader(" in text for text in code)
    assert any("torch.cuda.is_available()" in text for text in code)
    assert any("print(cnn" in text for text in code)
    assert any(re.search(r"\.exp\(\) / .*\.exp\(\)\.sum\(\)", text) and "F.softmax" in text for text in code)
    assert any("with torch.no_grad():" in text and "w -= " in text and ".grad" in text for text in code)
    autograd = [text for text in code if ".backward()" in text and ".grad" in text and "def " not in text]
    assert autograd, "a .backward() with a .grad read, outside the training loop"
    assert any("softmax" in text and "[None]" in text and "def " not in text for text in code)
    assert any("nn.Module" in text and "def forward" in text and "super().__init__()" in text for text in code)


def test_channels_last_is_not_in_part_one():
    assert not [index for index, cell in enumerate(PART_ONE) if "channels_last" in source(cell)
                or "channels-last" in source(cell).lower()]


@pytest.mark.parametrize("ingredient", ["affine_grid", "label_smoothing", "nesterov", "channels_last", "atomic_write",
                                        "check_checkpoint", "weight_decay", "random_affine"])
def test_part_ones_code_trains_the_plain_recipe(ingredient):
    """Part II (B) adds these; Part I's code (its exported cells included) never names them."""
    assert not [index for index, text in VISIBLE_CODE if ingredient in text]


def markdown_words(text: str) -> int:
    """Words of a markdown cell without its markup: link targets, HTML tags and markup characters dropped, the rest
    split at white space (so that "3 x 3" counts three)."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return len(re.sub(r"[#*`>|_\[\]]", " ", text).split())


QUESTIONS = next(index for index, text in MARKDOWN if text.startswith("## 10. Questions"))


def test_part_one_holds_at_most_3000_words_of_markdown_questions_and_answers_included():
    assert sum(markdown_words(text) for _, text in MARKDOWN) <= 3_000


def test_no_markdown_cell_before_part_ones_questions_holds_more_than_150_words():
    assert not [(index, markdown_words(text)) for index, text in MARKDOWN
                if index < QUESTIONS and markdown_words(text) > 150]


def code_tree(text: str) -> ast.Module:
    """A code cell parsed as Python, IPython's %magics turned into calls, line for line."""
    from IPython.core.inputtransformer2 import TransformerManager

    return ast.parse(TransformerManager().transform_cell(text))


def assigned_names(text: str) -> set[str]:
    names = set()
    for node in ast.walk(code_tree(text)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)) else []
        for target in targets:
            names |= {name.id for name in ast.walk(target) if isinstance(name, ast.Name)}
    return names


def test_the_set_up_cell_assigns_no_parameter_and_any_reassignment_is_in_a_visible_cell():
    parameters_cell = next(cell for cell in CELLS if "parameters" in cell.get("metadata", {}).get("tags", []))
    parameters = assigned_names(source(parameters_cell))
    assert {"EPOCHS", "QUICK", "DEVICE", "DATA_ROOT", "OUTPUT_DIR"} <= parameters
    for index, cell in enumerate(CELLS):
        if cell["cell_type"] != "code" or cell is parameters_cell:
            continue
        reassigned = assigned_names(source(cell)) & parameters
        assert not (reassigned and hidden(cell)), (index, reassigned)
        assert not (reassigned and "setup" in cell.get("metadata", {}).get("tags", [])), (index, reassigned)


def test_the_recap_quotes_the_test_accuracy_once_as_the_run_printed_it():
    printed = re.search(r"test accuracy (\d+\.\d+) ?%", output_text(CELLS[FIRST_TEST_ACCURACY]))
    recap = next(text for _, text in MARKDOWN if text.startswith("## 9. Recap"))
    assert re.findall(r"(\d+\.\d+) ?%", recap) == [printed[1]]


def test_the_plumbing_is_one_hidden_set_up_cell_near_the_top_that_says_what_it_does():
    hidden_cells = [index for index, cell in enumerate(CELLS) if hidden(cell)]
    assert len(hidden_cells) == 1
    cell = CELLS[hidden_cells[0]]
    assert hidden_cells[0] < 5
    assert "setup" in cell["metadata"]["tags"]
    first_line = source(cell).splitlines()[0]
    assert first_line.startswith("#@title Set-up: checks")
    assert "no need to read" in first_line
    assert "fetches MNIST" in first_line


def code_lines(cell: dict) -> list[str]:
    return [line for line in source(cell).splitlines() if line.strip() and not line.strip().startswith("#")]


SET_UP = next(cell for cell in CELLS if "setup" in cell.get("metadata", {}).get("tags", []))


def test_the_set_up_cell_only_checks_and_fetches_in_at_most_100_lines():
    assert len(code_lines(SET_UP)) <= 100, len(code_lines(SET_UP))
    tree = code_tree(source(SET_UP))
    assert not [node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


def defined_names(text: str) -> set[str]:
    """What a cell defines: assignments, functions, classes and imports."""
    names = assigned_names(text)
    for node in ast.walk(code_tree(text)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).partition(".")[0] for alias in node.names}
    return names


def test_part_ones_visible_code_uses_no_name_that_only_the_set_up_cell_defines():
    """A learner reads every name Part I uses where it is defined: none comes from the cell they need not read."""
    elsewhere = set().union(*(defined_names(source(cell)) for cell in CELLS
                              if cell["cell_type"] == "code" and cell is not SET_UP))
    only_set_up = defined_names(source(SET_UP)) - elsewhere
    assert {"REQUIRED", "OPTIONAL", "check_and_fetch"} <= only_set_up  # the check sees the set-up cell's names
    for index, text in VISIBLE_CODE:
        used = {node.id for node in ast.walk(code_tree(text)) if isinstance(node, ast.Name)}
        assert not used & only_set_up, (index, used & only_set_up)


def test_no_function_in_part_one_is_longer_than_20_lines():
    for cell in PART_ONE:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(code_tree(source(cell))):
            if isinstance(node, ast.FunctionDef):
                length = node.end_lineno - node.lineno + 1 + len(node.decorator_list)
                assert length <= 20, f"{node.name} is {length} lines"


def test_part_one_holds_no_cuda_graph_code():
    text = "\n".join(source(cell) for cell in PART_ONE if cell["cell_type"] == "code")
    for word in ("CUDAGraph", "CudaGraph", "cuda.graph", "capture", "fit_graphed"):
        assert word not in text, word


def test_every_part_two_section_says_it_is_optional_and_needs_only_part_one():
    headings = [line for cell in CELLS[PART_TWO:] if cell["cell_type"] == "markdown"
                for line in source(cell).splitlines() if line.startswith("## ")]
    sections = [heading for heading in headings if re.match(r"## [A-E]\. ", heading)]
    assert [heading[3] for heading in sections] == list("ABCDE")
    for heading in sections:
        assert heading.endswith("(optional; needs only Part I)"), heading


def test_nbval_output_checks_are_cell_tags_not_comments():
    tagged = [cell for cell in CELLS if "nbval-check-output" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) >= 5
    assert not [cell for cell in CELLS if "NBVAL_" in source(cell)]


def test_part_one_ends_with_a_recap_and_questions_with_folded_answers():
    questions = [cell for cell in PART_ONE if cell["cell_type"] == "markdown"
                 and re.search(r"^\*\*\d+\.\*\*", source(cell), flags=re.M)]
    numbers = [int(number) for cell in questions for number in re.findall(r"^\*\*(\d+)\.\*\*", source(cell), re.M)]
    assert numbers == list(range(1, 13))
    assert all("<details>" in source(cell) and "</details>" in source(cell) for cell in questions)
    assert any(source(cell).startswith("## 9. Recap") for cell in PART_ONE)


@pytest.mark.parametrize("name", ["show_images", "split_training_set", "pixel_statistics", "to_model_input",
                                  "DigitCNN", "architecture_graph", "train_one_epoch", "evaluate", "sgd_one_cycle",
                                  "check_learning", "fit"])
def test_the_teaching_code_is_visible_in_part_one_and_exported(name):
    defined = [cell for cell in PART_ONE if cell["cell_type"] == "code"
               and re.search(rf"^(def|class) {name}\b", source(cell), flags=re.M)]
    assert len(defined) == 1
    assert not hidden(defined[0])
    assert source(defined[0]).startswith("#| export\n")


def test_part_one_saves_and_loads_with_the_standard_idiom_in_sight():
    code = "\n".join(text for _, text in VISIBLE_CODE)
    assert "torch.save(checkpoint" in code
    assert "os.replace(" in code
    assert re.search(r"torch\.load\([^)]*weights_only=True", code)
    assert ".load_state_dict(" in code
    for plumbing in ("atomic_write", "check_checkpoint", "plain_number", "regular_file", "first_line"):
        assert plumbing not in code, plumbing


def test_part_two_d_says_in_its_first_lines_that_it_has_not_been_run_on_a_gpu():
    heading = next(source(cell) for cell in CELLS if source(cell).startswith("## D."))
    assert heading.split("\n\n")[1].startswith("*Not yet run on a GPU")


def test_part_two_e_leads_with_its_core_idea_and_names_the_network_it_reads_with():
    heading = next(source(cell) for cell in CELLS if source(cell).startswith("## E."))
    assert heading.split("\n\n")[1].startswith("**The core idea.**")
    assert "20-pixel" in heading or "20 \N{MULTIPLICATION SIGN} 20 box" in heading
    assert "centre of mass" in heading
    assert "**The network.**" in heading

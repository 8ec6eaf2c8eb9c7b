import logging

from amplify.logs import RedactingFilter, configure, redact


def test_it_masks_bearer_tokens_and_oauth_parameters():
    line = 'Authorization: Bearer abc.def.ghi oauth_token="tok123", oauth_signature=sig%3D'
    cleaned = redact(line)
    assert "abc.def.ghi" not in cleaned and "tok123" not in cleaned and "sig%3D" not in cleaned
    assert cleaned.count("[redacted]") == 3


def test_it_masks_passwords_in_json_like_text():
    cleaned = redact('{"identifier": "chapter.test", "password": "hunter2-app-pw"}')
    assert "hunter2-app-pw" not in cleaned
    assert "chapter.test" in cleaned


def test_it_holds_libraries_that_print_secrets_at_warning(caplog):
    configure(logging.DEBUG)
    assert logging.getLogger("oauthlib").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("amplify").getEffectiveLevel() == logging.DEBUG


def test_it_filters_records_before_they_are_written():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "token %s", ("access_token=s3cret",), None
    )
    RedactingFilter().filter(record)
    assert "s3cret" not in record.getMessage()

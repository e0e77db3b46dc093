"""The HTTP delivery: the REST API and web page (`app`), live video (`stream`), video jobs
(`jobs`), their schemas, errors and request-size limit. No torch."""

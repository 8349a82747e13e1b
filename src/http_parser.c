/* http_parser: not written yet */

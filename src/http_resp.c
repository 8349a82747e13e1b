/* http_resp: not written yet */

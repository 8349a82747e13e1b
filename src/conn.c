/* conn: not written yet */

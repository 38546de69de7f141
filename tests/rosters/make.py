"""Writes the roster corpus the tests read, as schools' systems export rosters.

The files are committed; this script says how each was made (openpyxl for the .xlsx,
odfpy for the .ods: other writers than the reader `stand` uses). Run it from this folder:
    python3 make.py
"""

import openpyxl
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P

# A department's list: two title rows, a numbered header, an empty row, a namesake, a total.
book = openpyxl.Workbook()
sheet = book.active
sheet.title = "Список"
sheet.append(["Список студентов 2 курса"])
sheet.merge_cells("A1:D1")
sheet.append(["Кафедра информационных систем"])
sheet.append([])
sheet.append(["№ п/п", "ФИО", "Группа", "Примечание"])
sheet.append([1, "Иванов Пётр Сергеевич", "ИС-21", None])
sheet.append([2, "Петрова Анна Викторовна", "ИС-21", "староста"])
sheet.append([3, "Иванов Павел Семёнович", "ИС-22", None])
sheet.append([])
sheet.append([4, "Щукина Юлия Андреевна", "ИС-22", None])
sheet.append([5, "Ёлкин Артём", "ИС-21", "академ. отпуск до 01.02"])
sheet.append(["Итого", 5])
book.save("school.xlsx")

# An electronic journal's CSV on a Russian Windows: `;`, Windows-1251, no BOM, a total.
journal = (
    "Фамилия;Имя;Отчество;Группа\r\n"
    "Смирнова;Ольга;Игоревна;ИС-31\r\n"
    "Кузнецов;Дмитрий;;ИС-31\r\n"
    "Ли;Вэй;;ИС-32\r\n"
    ";;;Всего: 3\r\n"
)
with open("journal-cp1251.csv", "wb") as f:
    f.write(journal.encode("cp1251"))

# A learning system's export: UTF-8 with a BOM, `,`, logins given.
export = (
    "Логин,Фамилия,Имя,Адрес электронной почты\n"
    "s.orlov,Орлов,Сергей,orlov@example.edu\n"
    "a.volkova,Волкова,Алина,volkova@example.edu\n"
)
with open("lms-export-bom.csv", "wb") as f:
    f.write("\ufeff".encode("utf-8") + export.encode("utf-8"))

# A hand-kept list with a row whose name was left empty.
with open("bad-row.csv", "w", encoding="utf-8") as f:
    f.write("ФИО;Группа\nСидоров Иван Ильич;ИС-21\n;ИС-21\nКозлова Мария;ИС-21\n")

# A LibreOffice sheet with English headers.
doc = OpenDocumentSpreadsheet()
table = Table(name="Students")
for row in [["Surname", "First name", "Group"], ["Smith", "Anna", "CS-1"], ["Garcia", "Luis", "CS-2"]]:
    tr = TableRow()
    for value in row:
        cell = TableCell(valuetype="string")
        cell.addElement(P(text=value))
        tr.addElement(cell)
    table.addElement(tr)
doc.spreadsheet.addElement(table)
doc.save("class.ods")

# A photo saved under a roster's name.
with open("photo.csv", "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
